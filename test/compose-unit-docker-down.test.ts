// Docker unreachable: the compose units point at a socket nobody serves (DOCKER_HOST in the
// unit env), so they fail at once with `Docker is not running: …`, while the units that do not
// need Docker come up anyway. Once in-process, once through the real CLI (`bksup up`), whose
// preflight says it a single time, naming the units. Needs only the docker CLI, not dockerd.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, removeDir, startStack, tempDir, type Stack } from './helpers/stack.ts';
import { uniqueProjectName } from './helpers/docker.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = join(import.meta.dirname, '..');
const NO_DOCKER = `unix:///tmp/bksup-no-docker-${process.pid}.sock`;
const NOT_RUNNING = `Docker is not running: Cannot connect to the Docker daemon at ${NO_DOCKER}`;

const COMPOSE_FILE = ['services:', '  nats:', '    image: bksup-test/nats', '  redis:', '    image: bksup-test/redis', ''].join('\n');

const stacks: Stack[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) removeDir(d);
});

describe('Docker unreachable', () => {
  it('compose units fail with "Docker is not running", everything that does not need Docker still comes up', async () => {
    const dir = tempDir('bksup-nodocker-');
    dirs.push(dir);
    writeFileSync(join(dir, 'docker-compose.yml'), COMPOSE_FILE);
    const s = await startStack(
      {
        compose: { file: 'docker-compose.yml', project: uniqueProjectName('nodocker') },
        units: {
          nats: { kind: 'compose', service: 'nats', env: { DOCKER_HOST: NO_DOCKER }, healthcheck: { tcp: 1 } },
          redis: { kind: 'compose', service: 'redis', env: { DOCKER_HOST: NO_DOCKER } },
          api: { command: fixture('forever.mjs'), healthcheck: { log: 'forever pid', interval: '100ms' } },
          worker: { command: fixture('forever.mjs'), dependsOn: { api: 'healthy' } },
          listener: { command: fixture('forever.mjs'), dependsOn: { nats: 'healthy' } },
        },
      },
      { dir },
    );
    stacks.push(s);
    const failed = await Promise.all([s.waitState('nats', 'failed', 40_000), s.waitState('redis', 'failed', 40_000)]);
    for (const f of failed) {
      expect(f.reason).toBe(NOT_RUNNING);
      // Not retried: a restart cannot start Docker.
      expect(s.statesOf(f.unit)).toEqual(['starting', 'failed']);
    }
    await s.waitState('worker', 'healthy', 30_000);
    expect(s.sup.unit('api')!.state).toBe('healthy');
    await waitFor(() => s.sup.unit('listener')!.snapshot().reason === 'waiting: dependency nats failed', { timeout: 10_000, message: 'listener blocked by nats' });
    expect(s.sup.unit('listener')!.state).toBe('pending');
    await s.stop();
    expect(s.sup.unit('api')!.state).toBe('stopped');
  });

  it('`bksup up` says it once, naming the units, runs the rest, and exits 0 on SIGTERM', async () => {
    const dir = tempDir('bksup-nodocker-cli-');
    dirs.push(dir);
    writeFileSync(join(dir, 'docker-compose.yml'), COMPOSE_FILE);
    const env = JSON.stringify({ DOCKER_HOST: NO_DOCKER });
    writeFileSync(
      join(dir, 'supervisor.config.ts'),
      [
        `import { defineConfig } from ${JSON.stringify(join(REPO, 'src', 'index.ts'))};`,
        'export default defineConfig({',
        `  compose: { file: 'docker-compose.yml', project: ${JSON.stringify(uniqueProjectName('nodockercli'))} },`,
        '  units: {',
        `    nats: { kind: 'compose', service: 'nats', env: ${env} },`,
        `    redis: { kind: 'compose', service: 'redis', env: ${env} },`,
        `    api: { command: ${JSON.stringify(fixture('forever.mjs'))}, healthcheck: { log: 'forever pid', interval: '100ms' } },`,
        '  },',
        '});',
        '',
      ].join('\n'),
    );
    // DOCKER_HOST is not set for the CLI itself: only the units' env points at the missing daemon.
    const childEnv: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete childEnv['DOCKER_HOST'];
    const child = spawn(process.execPath, [join(REPO, 'bin', 'bksup.js'), 'up'], { cwd: dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      await waitFor(() => /^api\s+\|\s+● healthy/m.test(out) && /^nats\s+\|\s+● failed/m.test(out) && /^redis\s+\|\s+● failed/m.test(out), {
        timeout: 40_000,
        message: `api healthy, nats and redis failed in the output:\n${out}`,
      });
    } finally {
      child.kill('SIGTERM');
    }
    const { code, signal } = await exited;
    expect({ code, signal }, out).toEqual({ code: 0, signal: null });

    // The preflight says it once, for both units.
    const preflight = out.split('\n').filter((l) => l.includes('Docker is not running'));
    const namedOnce = preflight.filter((l) => l.startsWith('bksup: preflight:'));
    expect(namedOnce, out).toEqual([`bksup: preflight: ${NOT_RUNNING} (needed by nats, redis; start Docker first)`]);
    // Each unit's own failure line carries the same reason (that is the unit's state, not a repeat of the warning).
    for (const u of ['nats', 'redis']) expect(preflight.filter((l) => new RegExp(`^${u}\\s+\\|\\s+● failed`).test(l)), out).toHaveLength(1);
    expect(preflight).toHaveLength(3);
    expect(out).toContain('bksup: all units stopped');
  });
});
