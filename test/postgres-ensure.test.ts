// ensureDatabases against a real PostgreSQL 15: creates once, no-op the second time, safe when
// run concurrently, a clear message for a role without CREATEDB, and never a password in a result.

import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDatabases, quoteIdent, sqlIdent } from '../src/tasks/postgres-ensure.ts';
import { freePort } from './helpers/ports.ts';
import { literal, startPostgres, type PostgresServer } from './helpers/servers.ts';

const PW = 'bklite_dev_pass';
let pg: PostgresServer;

beforeAll(async () => {
  pg = await startPostgres({ password: PW });
  await pg.query(`create role app login password ${literal('app-secret-pw')}`);
  await pg.query(`create role creator login createdb password ${literal('creator-pw')}`);
});

afterAll(async () => {
  await pg?.stop();
});

async function databases(): Promise<string[]> {
  return (await pg.query<{ datname: string }>('select datname from pg_database order by datname')).map((r) => r.datname);
}

describe('ensureDatabases', () => {
  it('creates mlflow once; the second run is a no-op', async () => {
    const lines: string[] = [];
    expect(await ensureDatabases(pg.url, ['mlflow'], { log: (l) => lines.push(l) })).toEqual({ ok: true, created: ['mlflow'], existing: [] });
    expect(await databases()).toContain('mlflow');
    expect(await ensureDatabases(pg.url, ['mlflow'], { log: (l) => lines.push(l) })).toEqual({ ok: true, created: [], existing: ['mlflow'] });
    expect(lines).toEqual(['created database "mlflow"', 'database "mlflow" already exists']);
  });

  it('handles several names, duplicates, and names that need quoting', async () => {
    const odd = 'My "odd" db';
    const res = await ensureDatabases(pg.url, ['mlflow', 'extra_one', odd, 'extra_one']);
    expect(res).toEqual({ ok: true, created: ['extra_one', odd], existing: ['mlflow'] });
    expect(await databases()).toEqual(expect.arrayContaining(['extra_one', odd]));
    expect(quoteIdent(odd)).toBe('"My ""odd"" db"');
    expect(sqlIdent('app')).toBe('app');
    expect(sqlIdent('App')).toBe('"App"');
  });

  it('concurrent runs all succeed and create the database exactly once', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => ensureDatabases(pg.url, ['concurrent_db'])));
    for (const r of results) expect(r.ok).toBe(true);
    const created = results.flatMap((r) => (r.ok ? r.created : []));
    const existing = results.flatMap((r) => (r.ok ? r.existing : []));
    expect(created).toEqual(['concurrent_db']);
    expect(existing).toEqual(['concurrent_db', 'concurrent_db', 'concurrent_db']);
  });

  it('a URL without a database connects to `postgres` (not a database named like the role)', async () => {
    const url = pg.urlFor({ user: 'creator', password: 'creator-pw' }).replace(/\/postgres$/, '');
    expect(url).toBe(`postgres://creator:creator-pw@127.0.0.1:${pg.port}`);
    expect(await ensureDatabases(url, ['made_by_creator'])).toEqual({ ok: true, created: ['made_by_creator'], existing: [] });
  });

  it('a role without CREATEDB gets a clear instruction, and existing databases still pass', async () => {
    const url = pg.urlFor({ user: 'app', password: 'app-secret-pw' });
    const res = await ensureDatabases(url, ['mlflow_app']);
    expect(res).toEqual({ ok: false, reason: 'role "app" may not create databases: grant it with ALTER ROLE app CREATEDB or create "mlflow_app" as a superuser' });
    expect(await ensureDatabases(url, ['mlflow'])).toEqual({ ok: true, created: [], existing: ['mlflow'] });
  });

  it('wrong password, server down, silent server, bad name: failures without the password', async () => {
    const wrong = await ensureDatabases(pg.urlFor({ password: 'wrong-secret-pw' }), ['mlflow']);
    expect(wrong).toEqual({
      ok: false,
      reason: `postgres postgres://postgres:***@127.0.0.1:${pg.port}/postgres: cannot connect: password authentication failed for user "postgres" [28P01]`,
    });
    expect(JSON.stringify(wrong)).not.toContain('wrong-secret-pw');

    const port = await freePort();
    expect(await ensureDatabases(`postgres://postgres:${PW}@127.0.0.1:${port}/postgres`, ['mlflow'])).toEqual({
      ok: false,
      reason: `postgres postgres://postgres:***@127.0.0.1:${port}/postgres: cannot connect: connection refused (nothing listening) [ECONNREFUSED]`,
    });

    // Accepts TCP and never speaks: only the timeout ends it.
    const held = new Set<Socket>();
    const silent = createServer((s) => held.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const addr = silent.address();
    const silentPort = typeof addr === 'object' && addr ? addr.port : 0;
    try {
      const t0 = Date.now();
      const res = await ensureDatabases(`postgres://postgres:${PW}@127.0.0.1:${silentPort}/postgres`, ['mlflow'], { timeoutMs: 500 });
      expect(res.ok).toBe(false);
      expect(!res.ok && res.reason).toMatch(/connect timed out|timed out after 500ms/);
      expect(JSON.stringify(res)).not.toContain(PW);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      for (const s of held) s.destroy();
      silent.close();
    }

    expect(await ensureDatabases(pg.url, ['x'.repeat(64)])).toEqual({ ok: false, reason: `database name "${'x'.repeat(64)}" is not usable: it must be 1-63 bytes` });
    expect(await ensureDatabases(pg.url, [])).toEqual({ ok: true, created: [], existing: [] });
  });
});
