// 1,000 probe attempts — tcp, http, redis, postgres, nats and exec; live servers, closed ports,
// wrong passwords — must leave this process's open fds and sockets where they were.
// The servers run as child processes, so the fds counted here are only the probes' client side.

import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runProbeOnce } from '../src/health/monitor.ts';
import { createProbe } from '../src/health/registry.ts';
import type { Probe, ProbeContext } from '../src/health/types.ts';
import type { ProbeSpec } from '../src/config/types.ts';
import { freePort } from './helpers/ports.ts';
import { startNats, startPostgres, startRedis, type NatsServer, type PostgresServer, type RedisServer } from './helpers/servers.ts';
import { waitFor } from './helpers/wait.ts';

const ATTEMPTS = 1000;
const CONCURRENCY = 4;
/**
 * Allowed growth: 3. The probes keep nothing between attempts (HTTP sends `connection: close`,
 * so fetch pools no idle socket), but the runtime opens a few things lazily on first use and keeps
 * them (a libuv/DNS helper fd, fetch's internals) — measured +1 after warm-up here. A leak of one
 * fd per attempt of any one probe kind would show as +100.
 */
const SLACK = 3;

function fdCounts(): { fds: number; sockets: number } {
  let fds = 0;
  let sockets = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the fd of the readdir itself, closed by now
    }
    fds++;
    if (target.startsWith('socket:')) sockets++;
  }
  return { fds, sockets };
}

let nats: NatsServer;
let redis: RedisServer;
let pg: PostgresServer;
let closed: number;
let monitorPort: number;

beforeAll(async () => {
  monitorPort = await freePort();
  [nats, redis, pg] = await Promise.all([
    startNats({ args: ['-m', String(monitorPort)] }), // its monitoring endpoint is the live HTTP server
    startRedis({ password: 'redis-pw' }),
    startPostgres({ password: 'pg-pw' }),
  ]);
  closed = await freePort();
  await waitFor(async () => (await fetch(`http://127.0.0.1:${monitorPort}/healthz`)).ok, { message: 'nats monitoring port' });
});

afterAll(async () => {
  await Promise.all([nats?.stop(), redis?.stop(), pg?.stop()]);
});

it(`${ATTEMPTS} probe attempts leave fds and sockets flat`, async () => {
  const ctx: ProbeContext = { unit: 'fd-test', cwd: process.cwd(), env: process.env as Record<string, string>, onLogs: () => () => undefined, timeoutMs: 5000 };
  const specs: { spec: ProbeSpec; ok: boolean }[] = [
    { spec: { tcp: nats.port }, ok: true },
    { spec: { tcp: closed }, ok: false },
    { spec: { http: `http://127.0.0.1:${monitorPort}/healthz` }, ok: true },
    { spec: { http: `http://127.0.0.1:${closed}/` }, ok: false },
    { spec: { redis: redis.url }, ok: true },
    { spec: { redis: `redis://:wrong@127.0.0.1:${redis.port}` }, ok: false },
    { spec: { postgres: pg.url }, ok: true },
    { spec: { postgres: `postgres://postgres:pg-pw@127.0.0.1:${closed}/postgres` }, ok: false },
    { spec: { nats: nats.url }, ok: true },
    { spec: { exec: ['/bin/true'] }, ok: true },
  ];
  const probes: { probe: Probe; ok: boolean }[] = specs.map(({ spec, ok }) => ({ probe: createProbe(spec, ctx), ok }));

  // Warm-up: lazy module state, the fetch pool's first connection, pg's first client.
  for (const { probe, ok } of probes) expect((await runProbeOnce(probe, 5000)).ok).toBe(ok);
  const before = fdCounts();

  let next = 0;
  const wrong: string[] = [];
  const worker = async (): Promise<void> => {
    while (next < ATTEMPTS) {
      const i = next++;
      const p = probes[i % probes.length];
      if (!p) continue;
      const res = await runProbeOnce(p.probe, 5000);
      if (res.ok !== p.ok) wrong.push(`${p.probe.label}: ${JSON.stringify(res)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  expect(wrong.slice(0, 5)).toEqual([]);

  // pg's end() and nats' close() finish a tick after the result: wait for the count to settle.
  let after = fdCounts();
  await waitFor(
    () => {
      after = fdCounts();
      return after.fds <= before.fds + SLACK && after.sockets <= before.sockets + SLACK;
    },
    { timeout: 15_000, message: `fds to settle (before ${JSON.stringify(before)})` },
  ).catch(() => undefined);
  expect(after.fds - before.fds).toBeLessThanOrEqual(SLACK);
  expect(after.sockets - before.sockets).toBeLessThanOrEqual(SLACK);
});
