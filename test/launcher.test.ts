// bin/bksup, the launcher users run (npm scripts, the package's bin): the daemon gets its
// memory settings, the children get the environment they would have had without them.

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT, waitForControl, writeConfig } from './helpers/daemon.ts';
import { removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { cleanupsAfterEach } from './helpers/cleanups.ts';

const LAUNCHER = join(ROOT, 'bin', 'bksup');
const cleanups = cleanupsAfterEach();

async function upWithEnvPrinter(env: NodeJS.ProcessEnv, opts: { dir?: string; extraUnits?: string } = {}): Promise<{ daemonArgs: string[]; daemonEnv: string[]; childEnv: string[]; dir: string }> {
  const dir = opts.dir ?? tempDir();
  cleanups.push(() => removeDir(dir));
  writeConfig(dir, `{ control: { port: 0 }, units: { printer: { command: 'env; echo ENV-DONE', restart: { policy: 'never' } }, ${opts.extraUnits ?? ''} } }`);
  const child = spawn(LAUNCHER, ['up', '--no-color'], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const control = await waitForControl(dir);
  // exec: the launcher's pid is the daemon's own, no shell left in between.
  expect(control.pid).toBe(child.pid);
  const log = join(dir, 'logs', 'printer.log');
  const text = await waitFor(() => {
    try {
      const t = readFileSync(log, 'utf8');
      return t.includes('ENV-DONE') ? t : undefined;
    } catch {
      return undefined;
    }
  }, { message: 'the printer unit wrote its environment' });
  const proc = (f: string): string[] => readFileSync(`/proc/${control.pid}/${f}`, 'utf8').split('\0');
  return {
    daemonArgs: proc('cmdline'),
    daemonEnv: proc('environ'),
    childEnv: text.split('\n').map((l) => l.replace(/^\S+ stdout \d+ /, '')),
    dir,
  };
}

it('starts the daemon with a small young generation and the mmap threshold, and the children do not inherit it', async () => {
  const { daemonArgs, daemonEnv, childEnv } = await upWithEnvPrinter({ MALLOC_MMAP_THRESHOLD_: undefined, BKSUP_UNSET_ENV: undefined });
  expect(daemonArgs).toContain('--max-semi-space-size=1');
  expect(daemonEnv).toContain('MALLOC_MMAP_THRESHOLD_=65536');
  expect(childEnv.filter((l) => l.startsWith('MALLOC_') || l.startsWith('BKSUP_UNSET_ENV'))).toEqual([]);
  expect(childEnv).toContain('NO_COLOR=1'); // the rest of the environment still arrives
});

it('keeps a MALLOC_MMAP_THRESHOLD_ the user set, for the daemon and the children', async () => {
  const { daemonEnv, childEnv } = await upWithEnvPrinter({ MALLOC_MMAP_THRESHOLD_: '131072', BKSUP_UNSET_ENV: undefined });
  expect(daemonEnv).toContain('MALLOC_MMAP_THRESHOLD_=131072');
  expect(childEnv).toContain('MALLOC_MMAP_THRESHOLD_=131072');
});

/** A CA and a certificate it signed for 127.0.0.1, made by openssl in `dir`. */
function makeCa(dir: string): { caFile: string; key: string; cert: string } {
  const f = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=bksup test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('srv.key'), '-out', f('srv.csr'));
  writeFileSync(f('srv.ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('srv.ext'), '-out', f('srv.pem'));
  return { caFile: f('ca.pem'), key: readFileSync(f('srv.key'), 'utf8'), cert: readFileSync(f('srv.pem'), 'utf8') };
}

it('keeps NODE_EXTRA_CA_CERTS from the daemon\'s start-up, yet its https probes trust that CA and the children inherit the variable', async () => {
  const dir = tempDir();
  const { caFile, key, cert } = makeCa(dir);
  const server = https.createServer({ key, cert }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const secured = `secured: { command: 'exec sleep 60', healthcheck: { http: 'https://127.0.0.1:${port}/', interval: '100ms' } },`;
  const { daemonEnv, childEnv } = await upWithEnvPrinter({ NODE_EXTRA_CA_CERTS: caFile, NODE_OPTIONS: '' }, { dir, extraUnits: secured });
  expect(daemonEnv.filter((l) => l.startsWith('NODE_EXTRA_CA_CERTS='))).toEqual([]);
  expect(childEnv).toContain(`NODE_EXTRA_CA_CERTS=${caFile}`);
  expect(childEnv.filter((l) => l.startsWith('BKSUP_EXTRA_CA_CERTS'))).toEqual([]);
  // Only a daemon that trusts the test CA sees the probe pass (the certificate is signed by nothing else).
  await waitFor(
    () => {
      try {
        return /● healthy/.test(readFileSync(join(dir, 'logs', 'secured.log'), 'utf8'));
      } catch {
        return false;
      }
    },
    { message: 'the https probe passed', timeout: 20_000 },
  );
});

it('client commands start without NODE_EXTRA_CA_CERTS (no TLS there): Node does not read the file', async () => {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  writeConfig(dir, `{ units: { app: { command: 'exec sleep 60' } } }`);
  const missing = join(dir, 'no-such-ca.pem');
  const run = (args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; err: string }> =>
    new Promise((resolve) => {
      const child = spawn(LAUNCHER, args, { cwd: dir, env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => resolve({ code, err }));
    });
  // Node warns at start-up about an extra-CA file it cannot read: only when it was asked to read one.
  const direct = await run(['check'], { NODE_EXTRA_CA_CERTS: missing });
  expect(direct.err).toContain('Ignoring extra certs');
  const status = await run(['status'], { NODE_EXTRA_CA_CERTS: missing });
  expect(status.code).toBe(1); // no daemon runs here
  expect(status.err).toMatch(/no supervisor is running/);
  expect(status.err).not.toContain('Ignoring extra certs');
});
