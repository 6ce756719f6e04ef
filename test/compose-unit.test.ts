// Compose units under a real Supervisor against a real dockerd: bring-up with host-side probes
// (JetStream nats, redis with AUTH), dependency gating, a killed container brought back with its
// JetStream data, adoption of a container that was already running, and a clean stop (containers
// stopped, not removed; volumes kept; no docker CLI of ours left behind). Every test owns one
// compose project with a unique name and removes exactly that project afterwards.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { formatStatusTable } from '../src/client/status.ts';
import { ComposeProject } from '../src/compose/driver.ts';
import type { StateEvent } from '../src/events.ts';
import type { ComposeUnit } from '../src/units/compose.ts';
import { createComposeProject, dockerClisMentioning, REDIS_PASSWORD, type TestComposeProject } from './fixtures/compose-unit/project.ts';
import { docker, requireDocker } from './helpers/docker.ts';
import { fixture, startStack, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { identify, stillAlive, type KnownProcess } from './helpers/pids.ts';

const gate = await requireDocker();
if (!gate.ok) console.warn(`compose unit tests not run: ${gate.reason}`);

// Two shared cores, docker-compose v1 needs ~1 s just to start: deadlines are generous.
const UP_MS = 90_000;

const stacks: Stack[] = [];
const projects: TestComposeProject[] = [];
const natsConns: NatsConnection[] = [];
const timings: Record<string, number> = {};

afterAll(() => {
  if (Object.keys(timings).length) console.log(`[compose-unit timings ms] ${JSON.stringify(timings)}`);
});

afterEach(async () => {
  for (const nc of natsConns.splice(0)) await nc.close().catch(() => undefined);
  for (const s of stacks.splice(0)) await s.stop();
  for (const p of projects.splice(0)) {
    await p.remove();
    expect(await p.leftovers()).toEqual({ containers: [], volumes: [], networks: [] });
  }
});

async function project(tag: string): Promise<TestComposeProject> {
  const p = await createComposeProject(tag);
  projects.push(p);
  return p;
}

async function stack(...args: Parameters<typeof startStack>): Promise<Stack> {
  const s = await startStack(...args);
  stacks.push(s);
  return s;
}

async function natsClient(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, timeout: 10_000, reconnect: false });
  natsConns.push(nc);
  return nc;
}

/** The first `state` event of `unit` at or after events[from] (the stack's waitState may miss one published before it is called). */
function waitEvent(s: Stack, unit: string, state: string, from: number, timeout: number): Promise<StateEvent> {
  return waitFor(() => s.events.slice(from).find((e) => e.unit === unit && e.state === state), {
    timeout,
    message: `${unit} ${state} (now ${s.sup.unit(unit)?.state}: ${s.sup.unit(unit)?.snapshot().reason ?? ''})`,
  });
}

function index(s: Stack, unit: string, state: string): number {
  return s.events.findIndex((e) => e.unit === unit && e.state === state);
}

function composeUnit(s: Stack, name: string): ComposeUnit {
  return s.sup.unit(name) as ComposeUnit;
}

const natsUnit = (p: TestComposeProject) => ({
  kind: 'compose' as const,
  service: 'nats',
  healthcheck: { nats: p.natsUrl, jetstream: true, interval: '250ms', timeout: '5s' },
});
const redisUnit = (p: TestComposeProject) => ({
  kind: 'compose' as const,
  service: 'redis',
  healthcheck: { redis: p.redisUrl, password: REDIS_PASSWORD, interval: '250ms', timeout: '5s' },
});

describe.skipIf(!gate.ok)('compose units on a real dockerd', () => {
  it('brings nats (JetStream) and redis (AUTH) up, probes them from the host, and starts a dependent only after both are healthy', async () => {
    const p = await project('up');
    const t0 = performance.now();
    const s = await stack(
      {
        env: { REDIS_PASSWORD },
        compose: { file: p.file, project: p.project },
        units: {
          nats: natsUnit(p),
          redis: redisUnit(p),
          app: { command: fixture('forever.mjs'), dependsOn: { nats: 'healthy', redis: 'healthy' } },
        },
      },
      { dir: p.dir },
    );
    await s.waitState('app', 'healthy', UP_MS);
    timings['nats+redis up, app healthy'] = Math.round(performance.now() - t0);

    const natsHealthy = index(s, 'nats', 'healthy');
    const redisHealthy = index(s, 'redis', 'healthy');
    const appStarting = index(s, 'app', 'starting');
    expect(natsHealthy).toBeGreaterThanOrEqual(0);
    expect(redisHealthy).toBeGreaterThanOrEqual(0);
    expect(appStarting).toBeGreaterThan(natsHealthy);
    expect(appStarting).toBeGreaterThan(redisHealthy);
    expect(s.events.find((e) => e.unit === 'app' && e.state === 'pending')?.reason).toMatch(/^waiting for (nats|redis) \(healthy\)/);
    // Each compose unit went the documented way, and was started by us (not adopted).
    for (const u of ['nats', 'redis']) {
      expect(s.statesOf(u).slice(0, 3)).toEqual(['starting', 'running', 'healthy']);
      expect(s.sup.unit(u)!.snapshot()).toMatchObject({ kind: 'compose', state: 'healthy', health: 'passing', restarts: 0 });
      expect(s.sup.unit(u)!.snapshot().adopted).toBeUndefined();
      expect(s.sup.unit(u)!.snapshot().pid).toBeGreaterThan(0);
    }

    // The probes passed against the real servers, from the host: see for ourselves.
    const nc = await natsClient(p.natsUrl);
    const jsm = await nc.jetstreamManager();
    expect((await jsm.getAccountInfo()).streams).toBe(0);
    expect((await p.inspect('redis'))?.running).toBe(true);
    // The container's output reached the unit's log (nats logs on stderr).
    await waitFor(() => readLog(s, 'nats').includes('Server is ready'), { timeout: 30_000, message: 'nats output in logs/nats.log' });
    // The password never shows in the unit's events.
    expect(JSON.stringify(s.events)).not.toContain(REDIS_PASSWORD);
  });

  it('sees `docker kill` of nats (backoff with the die reason), brings it back healthy, and the JetStream stream survives', async () => {
    const p = await project('kill');
    // Generous retries: the death must be seen through Docker's `die` event, not a failing probe.
    const nats = { ...natsUnit(p), healthcheck: { ...natsUnit(p).healthcheck, retries: 40 } };
    const s = await stack({ compose: { file: p.file, project: p.project }, units: { nats } }, { dir: p.dir });
    await s.waitState('nats', 'healthy', UP_MS);

    const nc = await natsClient(p.natsUrl);
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    await nc.jetstream().publish('orders.1', new TextEncoder().encode('first order'));
    await nc.close();

    const id = await p.containerId('nats');
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const t0 = performance.now();
    const mark = s.events.length;
    await docker('kill', id!);
    const backoff = await waitEvent(s, 'nats', 'backoff', mark, 30_000);
    expect(backoff.reason).toMatch(/^container died \(exit code 137\); restart 1 in \d+ ms$/);
    expect(backoff.exitCode).toBe(137);
    await waitEvent(s, 'nats', 'healthy', mark, UP_MS);
    timings['docker kill → healthy again'] = Math.round(performance.now() - t0);
    expect(s.sup.unit('nats')!.snapshot()).toMatchObject({ state: 'healthy', restarts: 1 });
    // No double handling of the one death: exactly one backoff.
    expect(s.statesOf('nats').filter((st) => st === 'backoff')).toHaveLength(1);

    // Each run's output once: the restarted container's start-up lines arrived, the first
    // run's were not replayed (`docker logs` of the same container holds both runs).
    await waitFor(() => readLog(s, 'nats').split('Server is ready').length - 1 >= 2, { timeout: 30_000, message: "the second run's output in logs/nats.log" });
    expect(readLog(s, 'nats').split('Server is ready').length - 1).toBe(2);

    // Persistence: same volume, the stream and its message are still there.
    const again = await natsClient(p.natsUrl);
    const info = await (await again.jetstreamManager()).streams.info('ORDERS');
    expect(info.config.subjects).toEqual(['orders.>']);
    expect(info.state.messages).toBe(1);
  });

  it('adopts a container that was already running, says so, and leaves it running after the supervisor stops', async () => {
    const p = await project('adopt');
    // Someone (an earlier `docker compose up`) started nats before the supervisor.
    const pre = new ComposeProject({ file: p.file, project: p.project, cwd: p.dir });
    try {
      const up = await pre.up('nats');
      expect(up, up.ok ? '' : up.reason).toMatchObject({ ok: true });
    } finally {
      await pre.close();
    }
    const before = await p.inspect('nats');
    expect(before?.running).toBe(true);

    const s = await stack({ compose: { file: p.file, project: p.project }, units: { nats: natsUnit(p) } }, { dir: p.dir });
    await s.waitState('nats', 'healthy', UP_MS);
    const snap = s.sup.unit('nats')!.snapshot();
    expect(snap.adopted).toBe(true);
    expect(s.events.find((e) => e.unit === 'nats' && e.state === 'running')?.reason).toBe('adopted (was already running)');
    expect(formatStatusTable(s.sup.snapshot(), { color: false, now: Date.now() })).toMatch(/nats\s+compose\s+healthy.*\(adopted\)/);
    expect(readLog(s, 'nats')).toContain('adopted container');
    // No `up` was run for it.
    expect(readLog(s, 'nats')).not.toContain('docker compose up');

    await s.stop();
    const stopped = s.events.filter((e) => e.unit === 'nats' && e.state === 'stopped').at(-1);
    expect(stopped?.reason).toContain('left running');
    expect(s.statesOf('nats')).not.toContain('stopping');
    const after = await p.inspect('nats');
    expect(after).toMatchObject({ id: before!.id, running: true });
  });

  it('on shutdown stops the containers (kept, volumes kept) and leaves no docker CLI of ours behind', async () => {
    const p = await project('stop');
    const s = await stack(
      {
        env: { REDIS_PASSWORD },
        compose: { file: p.file, project: p.project },
        units: {
          nats: natsUnit(p),
          redis: redisUnit(p),
          app: { command: fixture('forever.mjs'), dependsOn: { nats: 'healthy', redis: 'healthy' } },
        },
      },
      { dir: p.dir },
    );
    await s.waitState('app', 'healthy', UP_MS);
    const ids = [(await p.containerId('nats'))!, (await p.containerId('redis'))!];
    // While up: one `docker events` for the project plus a `docker logs -f` per container.
    const seen = new Map<number, KnownProcess>();
    await waitFor(
      () => {
        for (const u of ['nats', 'redis']) for (const k of identify(composeUnit(s, u).childPids())) if (!seen.has(k.pid)) seen.set(k.pid, k);
        return dockerClisMentioning([p.project, ...ids]).length >= 3 && seen.size >= 3;
      },
      { timeout: 30_000, message: 'docker events + two docker logs -f' },
    );
    const clis = dockerClisMentioning([p.project, ...ids]);
    expect(clis.filter((c) => / events /.test(c.cmdline))).toHaveLength(1);
    expect(clis.filter((c) => / logs /.test(c.cmdline))).toHaveLength(2);

    const t0 = performance.now();
    await s.stop();
    timings['shutdown (app, then compose stop of nats and redis)'] = Math.round(performance.now() - t0);

    // Dependents first: app stopped before either container was asked to stop.
    const appStopped = index(s, 'app', 'stopped');
    expect(appStopped).toBeLessThan(index(s, 'nats', 'stopping'));
    expect(appStopped).toBeLessThan(index(s, 'redis', 'stopping'));
    for (const u of ['nats', 'redis']) {
      expect(s.statesOf(u).slice(-2)).toEqual(['stopping', 'stopped']);
      expect(s.sup.unit(u)!.snapshot()).toMatchObject({ state: 'stopped', pid: null });
    }
    // Stopped, not removed; the named volume is still there.
    for (const svc of ['nats', 'redis'] as const) expect(await p.inspect(svc)).toMatchObject({ running: false, status: 'exited' });
    const left = await p.leftovers();
    expect(left.containers.sort()).toEqual([...ids].sort());
    expect(left.volumes).toEqual([`${p.project}_natsdata`]);
    // Nothing of ours keeps running: not the pids the project tracked, not any CLI naming the project or a container.
    expect(stillAlive(seen.values()), 'docker CLIs still alive').toEqual([]);
    for (const u of ['nats', 'redis']) expect(composeUnit(s, u).childPids()).toEqual([]);
    expect(dockerClisMentioning([p.project, ...ids])).toEqual([]);
  });
});

/** The unit's log file: its full record (state echoes, supervisor lines, container output). */
function readLog(s: Stack, unit: string): string {
  s.files.flushSync();
  try {
    return readFileSync(join(s.config.logs.dir, `${unit}.log`), 'utf8');
  } catch {
    return '';
  }
}
