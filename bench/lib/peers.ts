// The peers, installed when missing:
// - PM2 from npm into a scratch prefix (bench/.peers/pm2, ignored by git), never globally;
// - supervisord from Debian's `supervisor` package, and tini from Debian's `tini`.
//
// Installing the `supervisor` package must not start the system service: apt runs the
// package's init script through invoke-rc.d, which asks /usr/sbin/policy-rc.d first. When
// there is none, one that answers 101 ("not allowed") is put in place for the install and
// removed afterwards. The benchmark only ever runs supervisord with its own config file and
// socket in a temp dir.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Peers {
  pm2Dir: string;
  pm2Version: string;
  supervisord: string;
  supervisordVersion: string;
  tiniVersion: string;
}

const PEERS_DIR = join(import.meta.dirname, '..', '.peers');
const PM2_SPEC = 'pm2@7';

function say(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeout ?? 600_000, ...opts });
}

function ensurePm2(): { dir: string; version: string } {
  const prefix = join(PEERS_DIR, 'pm2');
  const dir = join(prefix, 'node_modules', 'pm2');
  if (!existsSync(join(dir, 'package.json'))) {
    say(`installing ${PM2_SPEC} into ${prefix} (scratch prefix, not global)`);
    mkdirSync(prefix, { recursive: true });
    run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--no-save', PM2_SPEC], { cwd: prefix });
  }
  const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  return { dir, version };
}

function aptInstall(packages: string[]): void {
  const policy = '/usr/sbin/policy-rc.d';
  const ours = !existsSync(policy);
  if (ours) writeFileSync(policy, '#!/bin/sh\n# bk-supervisor bench: no service starts during this install\nexit 101\n', { mode: 0o755 });
  try {
    say(`installing Debian packages: ${packages.join(' ')} (services are not started)`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
    } catch {
      run('apt-get', ['update', '-qq'], { env });
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
    }
  } finally {
    if (ours) rmSync(policy, { force: true });
  }
}

export function ensurePeers(): Peers {
  const missing: string[] = [];
  if (!existsSync('/usr/bin/supervisord')) missing.push('supervisor');
  if (!existsSync('/usr/bin/tini')) missing.push('tini');
  if (missing.length > 0) aptInstall(missing);
  const pm2 = ensurePm2();
  const supervisordVersion = run('/usr/bin/supervisord', ['--version']).trim();
  const tiniVersion = run('/usr/bin/tini', ['--version']).trim();
  return { pm2Dir: pm2.dir, pm2Version: pm2.version, supervisord: '/usr/bin/supervisord', supervisordVersion, tiniVersion };
}
