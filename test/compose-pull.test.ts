// Images that are not in the local store are pulled before `up` (which never pulls): a real
// registry (Debian's docker-registry on 127.0.0.1, a free port) serves an image made locally and
// pushed there; the unit pulls it with progress in its log and comes up. An unreachable registry
// (offline) is a clear failure of that unit naming the image and the command, not a hang.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ComposeProject } from '../src/compose/driver.ts';
import { serviceImages } from '../src/compose/images.ts';
import { docker, freePort, removeComposeProject, requireDocker, uniqueProjectName } from './helpers/docker.ts';
import { ensureTestImage } from './helpers/docker-images.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

const REGISTRY = '/usr/bin/docker-registry';
const gate = await requireDocker();
const runnable = gate.ok && existsSync(REGISTRY);
if (!runnable) console.warn(`compose pull tests not run: ${gate.ok ? `${REGISTRY} is not installed` : gate.reason}`);

const cleanups: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

let registryStarted: Promise<{ host: string; child: ChildProcess }> | undefined;
/** One registry for the file, started by the first test that needs it. */
function registry(): Promise<{ host: string; child: ChildProcess }> {
  registryStarted ??= startRegistry();
  return registryStarted;
}

/** Pushes the local redis test image to the registry under a fresh name and drops the local tag. */
async function pushedImage(tag: string): Promise<string> {
  const { host } = await registry();
  const repo = `${host}/${uniqueProjectName(tag)}/redis:1`;
  await docker('tag', await ensureTestImage('bksup-test/redis'), repo);
  await docker('push', repo);
  await docker('rmi', repo); // only the tag: the store no longer has `repo`
  cleanups.push(() => docker('rmi', repo).catch(() => undefined));
  return repo;
}

async function startRegistry(): Promise<{ host: string; child: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'bksup-registry-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const child = spawn(REGISTRY, ['serve', config], { stdio: 'ignore' });
  cleanups.push(async () => {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => undefined))?.ok, { timeout: 30_000, message: 'docker-registry answering /v2/' });
  return { host: `127.0.0.1:${port}`, child };
}

describe('serviceImages', () => {
  it('reads image and build of each service from compose config output', () => {
    const yaml = ['services:', '  mlflow:', '    build:', '      context: /x', '    image: bk/mlflow', '  postgres:', "    image: 'postgres:15-alpine'", '    ports:', '    - published: 15432', "version: '3.9'", ''].join('\n');
    expect([...serviceImages(yaml)]).toEqual([
      ['mlflow', { image: 'bk/mlflow', build: true }],
      ['postgres', { image: 'postgres:15-alpine', build: false }],
    ]);
  });
});

describe.skipIf(!runnable)('pulling missing images', () => {
  it('pulls from the registry with progress in the unit log, then starts; an unreachable registry fails the unit naming image and command', async () => {
    const repo = await pushedImage('img');
    const deadPort = await freePort();
    const offline = `127.0.0.1:${deadPort}/bksuptest/absent:1`;

    const dir = mkdtempSync(join(tmpdir(), 'bksup-pull-'));
    const project = uniqueProjectName('pull');
    const redisPort = await freePort();
    const file = join(dir, 'docker-compose.yml');
    writeFileSync(
      file,
      [
        "version: '3.8'",
        'services:',
        '  redis:',
        `    image: ${repo}`,
        '    network_mode: host',
        `    command: ["--port", "${redisPort}", "--bind", "127.0.0.1", "--save", ""]`,
        '  offline:',
        `    image: ${offline}`,
        '    network_mode: host',
        '',
      ].join('\n'),
    );
    const stacks: Stack[] = [];
    cleanups.push(async () => {
      for (const st of stacks) await st.stop();
      await removeComposeProject(project);
      rmSync(dir, { recursive: true, force: true });
    });
    const s = await startStack(
      {
        compose: { file, project },
        units: {
          redis: { kind: 'compose', service: 'redis', healthcheck: { tcp: `127.0.0.1:${redisPort}`, interval: '250ms' } },
          offline: { kind: 'compose', service: 'offline' },
        },
      },
      { dir },
    );
    stacks.push(s);
    await s.waitState('redis', 'healthy', 180_000);
    await s.waitState('offline', 'failed', 180_000);
    await s.files.flush();
    const log = readFileSync(join(dir, 'logs', 'redis.log'), 'utf8');
    expect(log).toContain(`image ${repo} is not in the local store: pulling it (docker-compose -f ${file} pull redis)`);
    expect(log).toContain(`pulled ${repo}`);
    expect(log.indexOf(`pulled ${repo}`)).toBeLessThan(log.indexOf('docker compose up -d --no-deps redis'));
    const reason = s.sup.unit('offline')!.snapshot().reason ?? '';
    expect(reason).toContain(`image ${offline} is not in the local store and pulling it failed (ERROR: for offline`);
    expect(reason).toContain('connection refused');
    expect(reason).toContain(`when the registry is reachable, run: docker-compose -f ${file} pull offline`);
  }, 400_000);

  it('compose v2: the pull is `compose pull <service>` and `up` keeps `--pull never`', async () => {
    const repo = await pushedImage('v2');
    const dir = mkdtempSync(join(tmpdir(), 'bksup-pull-v2-'));
    const project = uniqueProjectName('pullv2');
    cleanups.push(async () => {
      await removeComposeProject(project);
      rmSync(dir, { recursive: true, force: true });
    });
    const file = join(dir, 'docker-compose.yml');
    const redisPort = await freePort();
    writeFileSync(file, `version: '3.8'\nservices:\n  redis:\n    image: ${repo}\n    network_mode: host\n    command: ["--port", "${redisPort}", "--bind", "127.0.0.1", "--save", ""]\n`);
    // A v2 stand-in: records its arguments, then hands them to v1 without `--pull never` (v1 has no such flag).
    const shim = join(dir, 'compose-v2');
    const log = join(dir, 'argv.log');
    writeFileSync(
      shim,
      `#!${process.execPath}\nconst { appendFileSync } = require('node:fs');\nconst { spawnSync } = require('node:child_process');\n` +
        `const args = process.argv.slice(2);\nappendFileSync(${JSON.stringify(log)}, args.join(' ') + '\\n');\n` +
        `const i = args.indexOf('--pull'); if (i >= 0) args.splice(i, 2);\n` +
        `process.exit(spawnSync('docker-compose', args, { stdio: 'inherit' }).status ?? 1);\n`,
      { mode: 0o755 },
    );
    const p = new ComposeProject({ file, project, cwd: dir, compose: { argv: [shim], version: '2.24.0', major: 2 } });
    cleanups.push(() => p.close());
    const lines: string[] = [];
    const pulled = await p.ensureImage('redis', (l) => lines.push(l));
    expect(pulled.ok, JSON.stringify(pulled)).toBe(true);
    expect(lines[0]).toBe(`image ${repo} is not in the local store: pulling it (${shim} -f ${file} pull redis)`);
    expect(lines.at(-1)).toBe(`pulled ${repo}`);
    const up = await p.up('redis');
    expect(up.ok, JSON.stringify(up)).toBe(true);
    const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.replace(`-f ${file} -p ${project} --ansi never `, ''));
    expect(calls).toEqual(['config', 'pull redis', 'up -d --no-deps --pull never redis']);
    await p.stop('redis', 5);
  }, 300_000);
});
