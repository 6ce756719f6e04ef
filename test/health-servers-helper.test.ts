// The shared test servers (test/helpers/servers.ts) keep their promises: ready when started,
// gone (by /proc) and cleaned up when stopped, startable on a chosen port, stop() idempotent.

import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { isAlive } from '../src/util/proc.ts';
import { freePort } from './helpers/ports.ts';
import { startNats, startPostgres, startRedis } from './helpers/servers.ts';

it('start → ready, stop → pid gone and temp dir removed, on a chosen port', async () => {
  const port = await freePort();
  const servers = await Promise.all([startNats({ jetstream: true }), startRedis({ password: 'pw' }), startPostgres({ port, password: 'pw' })]);
  const [nats, redis, pg] = servers;
  expect(pg.port).toBe(port);
  expect(nats.storeDir && existsSync(nats.storeDir)).toBe(true);
  expect(redis.url).toBe(`redis://:pw@127.0.0.1:${redis.port}`);
  expect(pg.url).toBe(`postgres://postgres:pw@127.0.0.1:${port}/postgres`);
  expect(await pg.query<{ n: number }>('select 2 as n')).toEqual([{ n: 2 }]);
  for (const s of servers) expect(isAlive(s.pid)).toBe(true);
  await Promise.all(servers.map((s) => s.stop()));
  for (const s of servers) {
    expect(isAlive(s.pid)).toBe(false);
    expect(existsSync(s.dir)).toBe(false);
  }
  await Promise.all(servers.map((s) => s.stop())); // idempotent
});

it('a server that cannot start fails with its output', async () => {
  await expect(startNats({ args: ['--no-such-flag'] })).rejects.toThrow(/nats-server exited during start-up; its output:/);
});
