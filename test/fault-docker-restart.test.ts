// Fault injection: Docker restarts under a running stack (Docker Desktop restarting, an upgrade,
// `systemctl restart docker`). The test runs a dockerd of its own, so stopping it disturbs no
// other test; the stack runs in-process with DOCKER_HOST pointing at it.
//
// What must hold: the compose units go down and come back by themselves once Docker answers
// again, never `failed` because Docker blinked; no service ends up with two containers; the
// units that do not need Docker are untouched (same pid, not one state change).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createComposeProject, REDIS_PASSWORD, type TestComposeProject } from './fixtures/compose-unit/project.ts';
import { docker } from './helpers/docker.ts';
import { privateDockerd, type PrivateDockerd } from './helpers/private-dockerd.ts';
import { fixture, startStack, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

let dockerd: PrivateDockerd;
let project: TestComposeProject | undefined;
let stack: Stack | undefined;

beforeAll(async () => {
  dockerd = privateDockerd();
  await dockerd.start();
  // Everything in this file (image import, compose, the stack's CLIs) talks to that dockerd.
  process.env.DOCKER_HOST = dockerd.host;
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dockerd.pid === undefined) await dockerd.start();
  await project?.remove();
  await dockerd.dispose();
}, 120_000);

async function containersOf(p: TestComposeProject, service: string): Promise<string[]> {
  const out = await docker('ps', '-a', '-q', '--filter', `label=com.docker.compose.project=${p.project}`, '--filter', `label=com.docker.compose.service=${service}`);
  return out.split('\n').filter(Boolean);
}

describe('fault injection: Docker restarts', () => {
  it('dockerd stopped and started under the stack: compose units come back, none failed, no duplicate container, the rest untouched', { timeout: 180_000 }, async () => {
    const p = await createComposeProject('dockerblink');
    project = p;
    const probe = { interval: '250ms', retries: 2 };
    const s = await startStack(
      {
        compose: { file: p.file, project: p.project },
        // For compose's interpolation: the units of one project share one environment.
        env: { REDIS_PASSWORD },
        units: {
          nats: { kind: 'compose', service: 'nats', healthcheck: { nats: p.natsUrl, jetstream: true, ...probe } },
          redis: { kind: 'compose', service: 'redis', healthcheck: { redis: p.redisUrl, password: REDIS_PASSWORD, ...probe } },
          app: { command: fixture('forever.mjs') },
          listener: { command: fixture('forever.mjs'), dependsOn: { nats: 'healthy' }, onDependencyFailure: 'restart' },
        },
      },
      { dir: p.dir },
    );
    stack = s;
    await Promise.all(['nats', 'redis', 'listener', 'app'].map((u) => s.waitState(u, 'healthy', 90_000)));
    const appPid = s.sup.unit('app')!.pid;
    const natsContainers = await containersOf(p, 'nats');
    const redisContainers = await containersOf(p, 'redis');
    const mark = s.events.length;

    const t0 = Date.now();
    await dockerd.stop();
    // Both notice, and say they wait for Docker rather than giving up.
    await waitFor(
      () => ['nats', 'redis'].every((u) => /waiting for Docker to come back/.test(s.sup.unit(u)!.snapshot().reason ?? '')),
      { timeout: 60_000, message: `compose units waiting for Docker (now ${['nats', 'redis'].map((u) => `${u} ${s.sup.unit(u)!.state}: ${s.sup.unit(u)!.snapshot().reason}`).join('; ')})` },
    );
    const noticedMs = Date.now() - t0;
    // The listener follows nats (onDependencyFailure: restart) and waits for it.
    await waitFor(() => s.sup.unit('listener')!.state === 'stopped' || s.sup.unit('listener')!.state === 'pending', { timeout: 30_000, message: 'listener stopped' });

    const t1 = Date.now();
    await dockerd.start();
    await Promise.all(['nats', 'redis', 'listener'].map((u) => waitFor(() => s.sup.unit(u)!.state === 'healthy', { timeout: 90_000, message: `${u} healthy again` })));
    const backMs = Date.now() - t1;

    const since = s.events.slice(mark);
    expect(since.filter((e) => e.state === 'failed').map((e) => `${e.unit}: ${e.reason}`)).toEqual([]);
    // One container per service, the same one as before (compose started it again).
    expect(await containersOf(p, 'nats')).toEqual(natsContainers);
    expect(await containersOf(p, 'redis')).toEqual(redisContainers);
    // What does not need Docker did not notice.
    expect(since.filter((e) => e.unit === 'app')).toEqual([]);
    expect(s.sup.unit('app')!.pid).toBe(appPid);
    console.log(`docker restart: compose units waiting ${noticedMs} ms after dockerd stopped; healthy again ${backMs} ms after it started`);
  });
});
