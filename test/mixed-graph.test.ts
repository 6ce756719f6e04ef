// One dependency graph over both worlds: a native process (nats-server run directly on a free
// port) and a compose unit (redis in a container), with a third unit that needs both healthy.

import { afterEach, describe, expect, it } from 'vitest';
import { createComposeProject, REDIS_PASSWORD, type TestComposeProject } from './fixtures/compose-unit/project.ts';
import { requireDocker } from './helpers/docker.ts';
import { which } from './helpers/docker-images.ts';
import { freePort } from './helpers/ports.ts';
import { fixture, startStack, type Stack } from './helpers/stack.ts';

const gate = await requireDocker();
if (!gate.ok) console.warn(`mixed graph tests not run: ${gate.reason}`);

const stacks: Stack[] = [];
const projects: TestComposeProject[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.stop();
  for (const p of projects.splice(0)) {
    await p.remove();
    expect(await p.leftovers()).toEqual({ containers: [], volumes: [], networks: [] });
  }
});

describe.skipIf(!gate.ok)('mixed graph: native process + compose unit', () => {
  it('starts the dependent only after the native nats and the compose redis are both healthy, and stops it first', async () => {
    const p = await createComposeProject('mixed');
    projects.push(p);
    const natsServer = which('nats-server');
    if (!natsServer) throw new Error('nats-server not found on this machine (Debian: apt-get install nats-server)');
    const natsPort = await freePort();
    const t0 = performance.now();
    const s = await startStack(
      {
        env: { REDIS_PASSWORD },
        compose: { file: p.file, project: p.project },
        units: {
          nats: {
            command: [natsServer, '-js', '-sd', `${p.dir}/jetstream`, '-p', String(natsPort), '-a', '127.0.0.1'],
            healthcheck: { nats: `nats://127.0.0.1:${natsPort}`, jetstream: true, interval: '250ms' },
          },
          redis: { kind: 'compose', service: 'redis', healthcheck: { redis: p.redisUrl, password: REDIS_PASSWORD, interval: '250ms' } },
          app: { command: fixture('forever.mjs'), dependsOn: { nats: 'healthy', redis: 'healthy' } },
        },
      },
      { dir: p.dir },
    );
    stacks.push(s);
    // Within the test's own timeout, so that a failure says where each unit got stuck.
    await s.waitState('app', 'healthy', 90_000).catch((err: unknown) => {
      const states = ['nats', 'redis', 'app'].map((u) => JSON.stringify(s.sup.unit(u)!.snapshot()));
      throw new Error(`${String(err)}\n${states.join('\n')}`);
    });
    const took = Math.round(performance.now() - t0);

    const at = (unit: string, state: string): number => s.events.findIndex((e) => e.unit === unit && e.state === state);
    expect(at('nats', 'healthy')).toBeGreaterThanOrEqual(0);
    expect(at('redis', 'healthy')).toBeGreaterThanOrEqual(0);
    expect(at('app', 'starting')).toBeGreaterThan(at('nats', 'healthy'));
    expect(at('app', 'starting')).toBeGreaterThan(at('redis', 'healthy'));
    // Both started at once: neither waited for the other.
    expect(at('nats', 'starting')).toBeLessThan(at('redis', 'healthy'));
    expect(at('redis', 'starting')).toBeLessThan(at('nats', 'healthy'));
    expect(s.sup.unit('nats')!.snapshot()).toMatchObject({ kind: 'process', state: 'healthy' });
    expect(s.sup.unit('redis')!.snapshot()).toMatchObject({ kind: 'compose', state: 'healthy' });

    await s.stop();
    const stopped = s.events.filter((e) => e.state === 'stopped').map((e) => e.unit);
    expect(stopped[0]).toBe('app');
    expect(stopped.slice(1).sort()).toEqual(['nats', 'redis']);
    expect((await p.inspect('redis'))?.running).toBe(false);
    console.log(`[mixed-graph timings ms] {"nats native + redis compose, app healthy":${took}}`);
  }, 120_000);
});
