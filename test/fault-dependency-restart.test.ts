// Fault injection: a dependency restarts underneath the stack. nats-server, PostgreSQL and Redis
// run outside the supervisor (as a Docker restart or a system service would restart them); the
// stack sees them only through its units' probes. Each is SIGKILLed (its whole process group)
// and started again over the same data by the test, with nothing done on the supervisor's side.
//
// What must hold, for each of the three: the dependency's unit goes unhealthy and comes back;
// dependents follow `onDependencyFailure` (`restart` for the NATS listener, whose subscription
// dies with the connection; `wait` for the server, which keeps its pid); the listener's NATS
// request probe passes again with no manual step; no unit is ever `failed`; no restart storm.

import { join } from 'node:path';
import { connect, JSONCodec } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { INDEX } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { startNats, startPostgres, startRedis, type ServerHandle } from './helpers/servers.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups, type DaemonRun, type EventRecorder, type UnitRow } from './fixtures/fault/harness.ts';
import { writeFileSync } from 'node:fs';

const DEMO = join(import.meta.dirname, '..', 'examples', 'bklite-demo');
const FOREVER = join(import.meta.dirname, 'fixtures', 'bin', 'forever.mjs');
const NODE = process.execPath;

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const PROBE_TIMING = `interval: '200ms', timeout: '2s', retries: 2`;

interface Fixture {
  d: DaemonRun;
  rec: EventRecorder;
  nats: Awaited<ReturnType<typeof startNats>>;
  pg: Awaited<ReturnType<typeof startPostgres>>;
  redis: Awaited<ReturnType<typeof startRedis>>;
}

async function setUp(): Promise<Fixture> {
  const [nats, pg, redis] = await Promise.all([startNats({ jetstream: true }), startPostgres({ password: 'pg pass' }), startRedis({ password: 'redis-pass' })]);
  cleanups.add(() => Promise.all([nats.stop(), pg.stop(), redis.stop()]));
  const serverPort = await freePort();
  const dir = cleanups.project('bksup-fault-deps-');
  const env = {
    DB_HOST: '127.0.0.1',
    DB_PORT: pg.port,
    DB_USER: 'postgres',
    DB_PASSWORD: 'pg pass',
    DB_NAME: 'postgres',
    NATS_SERVERS: nats.url,
    NATS_NAMESPACE: 'bk_lite',
  };
  // The three services are units that watch a server they do not run: a placeholder process and
  // the real probe, like a compose service whose container someone else restarts.
  const watcher = (probe: string): string =>
    `{ command: [${JSON.stringify(NODE)}, ${JSON.stringify(FOREVER)}], healthcheck: { ${probe}, ${PROBE_TIMING} }, restart: { policy: 'always', backoff: { initial: '100ms', max: '1s' }, maxRestarts: 5, window: '5m' } }`;
  const config = `{
    env: ${JSON.stringify(env)},
    units: {
      nats: ${watcher(`nats: ${JSON.stringify(nats.url)}, jetstream: true`)},
      postgres: ${watcher(`postgres: ${JSON.stringify(pg.url)}`)},
      redis: ${watcher(`redis: ${JSON.stringify(`redis://127.0.0.1:${redis.port}`)}, password: 'redis-pass'`)},
      'db-init': { kind: 'task', command: [${JSON.stringify(NODE)}, ${JSON.stringify(join(DEMO, 'bin', 'db-init.mjs'))}], env: { DEMO_MIGRATIONS: ${JSON.stringify(join(DEMO, 'migrations'))} },
                   dependsOn: { postgres: 'healthy', redis: 'healthy', nats: 'healthy' } },
      nats_listener: {
        command: [${JSON.stringify(NODE)}, ${JSON.stringify(join(DEMO, 'bin', 'nats-listener.mjs'))}],
        dependsOn: { nats: 'healthy', 'db-init': 'completed' },
        healthcheck: { nats: ${JSON.stringify(nats.url)}, request: { subject: 'bk_lite.get_login_module_domain_list', payload: { args: [], kwargs: {} }, expect: { success: true } }, ${PROBE_TIMING} },
        onDependencyFailure: 'restart',
        restart: { policy: 'always', backoff: { initial: '100ms', max: '1s' }, maxRestarts: 5, window: '5m' },
      },
      server: {
        command: [${JSON.stringify(NODE)}, ${JSON.stringify(join(DEMO, 'bin', 'server.mjs'))}],
        env: { SERVER_PORT: ${serverPort} },
        dependsOn: { postgres: 'healthy', redis: 'healthy', nats: 'healthy', 'db-init': 'completed' },
        healthcheck: { http: 'http://127.0.0.1:${serverPort}/admin/login/', ${PROBE_TIMING} },
        onDependencyFailure: 'wait',
        restart: { policy: 'always', backoff: { initial: '100ms', max: '1s' }, maxRestarts: 5, window: '5m' },
      },
    },
  }`;
  writeFileSync(join(dir, 'supervisor.config.ts'), `import { defineConfig } from ${JSON.stringify(INDEX)};\nexport default defineConfig(${config});\n`);
  const d = cleanups.daemon(dir);
  const rec = await d.recordEvents();
  cleanups.add(() => rec.close());
  await d.allHealthy(['nats', 'postgres', 'redis', 'nats_listener', 'server'], 90_000);
  return { d, rec, nats, pg, redis };
}

/** The domain list through NATS, as the server asks for it: what the login page shows. */
async function domains(natsUrl: string): Promise<unknown> {
  const nc = await connect({ servers: natsUrl, reconnect: false, timeout: 2000 });
  try {
    const codec = JSONCodec();
    const msg = await nc.request('bk_lite.get_login_module_domain_list', codec.encode({ args: [], kwargs: {} }), { timeout: 3000 });
    return codec.decode(msg.data);
  } finally {
    await nc.close();
  }
}

function byName(rows: UnitRow[]): Map<string, UnitRow> {
  return new Map(rows.map((r) => [r.name, r]));
}

async function crashAndRevive(f: Fixture, unit: 'nats' | 'postgres' | 'redis', server: ServerHandle): Promise<{ downMs: number; backMs: number }> {
  const since = f.rec.events.length;
  const t0 = Date.now();
  await server.crash();
  // The supervisor notices through the probe alone.
  await waitFor(() => f.rec.of(unit, since).some((e) => e.state === 'unhealthy'), { timeout: 30_000, message: `${unit} unhealthy after its server was killed` });
  const downMs = Date.now() - t0;
  if (unit === 'nats') {
    // onDependencyFailure: restart — the listener is stopped while NATS is away, naming it.
    const stopped = await waitFor(() => f.rec.of('nats_listener', since).find((e) => e.state === 'stopped'), { timeout: 30_000, message: 'nats_listener stopped' }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${JSON.stringify(f.rec.events.slice(since))}`);
    });
    expect(stopped.reason).toMatch(/dependency nats is/);
  }
  // onDependencyFailure: wait — the server keeps running and says which dependency is missing.
  await waitFor(async () => (await f.d.unit('server')).reason?.includes(`dependency ${unit}`), { timeout: 30_000, message: `server's reason naming ${unit}` });
  const t1 = Date.now();
  await server.revive();
  await f.d.allHealthy(['nats', 'postgres', 'redis', 'nats_listener', 'server'], 60_000);
  const backMs = Date.now() - t1;
  await waitFor(async () => (await f.d.unit('server')).reason === null, { timeout: 30_000, message: 'server reason cleared' });
  return { downMs, backMs };
}

describe('fault injection: a dependency restarts underneath', () => {
  it('nats-server, PostgreSQL and Redis killed and started again by someone else: units follow, the listener answers again, nothing fails', async () => {
    const f = await setUp();
    const before = byName(await f.d.units());
    const serverPid = before.get('server')!.pid;
    expect(await domains(f.nats.url)).toMatchObject({ success: true, result: ['domain.com'] });
    const figures: string[] = [];

    for (const [unit, server] of [
      ['nats', f.nats],
      ['postgres', f.pg],
      ['redis', f.redis],
    ] as const) {
      const listenerBefore = (await f.d.unit('nats_listener')).pid;
      const { downMs, backMs } = await crashAndRevive(f, unit, server);
      figures.push(`${unit}: unhealthy ${downMs} ms after the kill, all healthy ${backMs} ms after the restart`);
      // The listener's own NATS request probe passes again, and so does a real request.
      expect(await domains(f.nats.url)).toMatchObject({ success: true, result: ['domain.com'] });
      const listenerAfter = (await f.d.unit('nats_listener')).pid;
      if (unit === 'nats') expect(listenerAfter).not.toBe(listenerBefore);
    }

    const after = byName(await f.d.units());
    // `wait`: the server rode out all three outages with the same process.
    expect(after.get('server')!.pid).toBe(serverPid);
    // Never failed, never in a restart storm: each outage costs a watcher at most one restart.
    const states = f.rec.events.map((e) => `${e.unit}:${e.state}`);
    expect(states.filter((s) => s.endsWith(':failed'))).toEqual([]);
    for (const [name, row] of after) {
      expect(row.state, name).toBe(name === 'db-init' ? 'completed' : 'healthy');
      expect(row.restarts, `${name} restarts`).toBeLessThanOrEqual(3);
    }
    console.log(figures.join('\n'));
  });
});
