// redis, nats and postgres probes against real servers (test/helpers/servers.ts): each passes
// against a live server and fails with a useful reason against a closed port, a stopped
// server or wrong credentials, and no reason ever carries a password.

import { connect as natsConnect, type NatsConnection, type Subscription } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsProbe } from '../src/health/nats.ts';
import { createPostgresProbe } from '../src/health/postgres.ts';
import { createRedisProbe } from '../src/health/redis.ts';
import type { ProbeContext } from '../src/health/types.ts';
import { freePort } from './helpers/ports.ts';
import { startNats, startPostgres, startRedis, type NatsServer, type PostgresServer, type RedisServer } from './helpers/servers.ts';
import { waitFor } from './helpers/wait.ts';

const ctx: ProbeContext = { unit: 'stack', cwd: process.cwd(), env: {}, onLogs: () => () => undefined, timeoutMs: 5000 };
const never = (): AbortSignal => new AbortController().signal;

// ---------------------------------------------------------------- redis

describe('redis probe', () => {
  const PW = 'bklite_redis_pass';
  let secured: RedisServer;
  let open: RedisServer;
  beforeAll(async () => {
    [secured, open] = await Promise.all([startRedis({ password: PW }), startRedis()]);
  });
  afterAll(async () => {
    await Promise.all([secured?.stop(), open?.stop()]);
  });

  it('PING without auth on an open server', async () => {
    const probe = createRedisProbe({ redis: `redis://127.0.0.1:${open.port}` }, ctx);
    expect(probe.label).toBe(`redis 127.0.0.1:${open.port}`);
    expect(await probe.check(never())).toEqual({ ok: true, detail: 'PONG' });
    expect((await createRedisProbe({ redis: String(open.port) }, ctx).check(never())).ok).toBe(true);
  });

  it('AUTH from the URL, from `password`, or as user:password (ACL)', async () => {
    expect(await createRedisProbe({ redis: secured.url }, ctx).check(never())).toEqual({ ok: true, detail: 'PONG' });
    expect((await createRedisProbe({ redis: `127.0.0.1:${secured.port}`, password: PW }, ctx).check(never())).ok).toBe(true);
    expect((await createRedisProbe({ redis: `redis://default:${PW}@127.0.0.1:${secured.port}/0` }, ctx).check(never())).ok).toBe(true);
  });

  it('explains a missing password (NOAUTH) and a wrong one (WRONGPASS), never showing it', async () => {
    expect(await createRedisProbe({ redis: `redis://127.0.0.1:${secured.port}` }, ctx).check(never())).toEqual({
      ok: false,
      reason: `redis 127.0.0.1:${secured.port}: authentication required [NOAUTH]: give the password in the URL (redis://:PASSWORD@host:port) or as \`password\``,
    });
    const wrong = await createRedisProbe({ redis: `redis://:not-the-password@127.0.0.1:${secured.port}` }, ctx).check(never());
    expect(wrong).toEqual({ ok: false, reason: `redis 127.0.0.1:${secured.port} (auth): authentication failed: wrong password (or user) [WRONGPASS]` });
    expect(JSON.stringify(wrong)).not.toContain('not-the-password');
  });

  it('says so when AUTH is sent to a server without a password', async () => {
    const res = await createRedisProbe({ redis: `redis://:${PW}@127.0.0.1:${open.port}` }, ctx).check(never());
    expect(!res.ok && res.reason).toContain('AUTH was sent but the server has no password configured');
  });

  it('fails on a stopped server and a non-Redis peer', async () => {
    const r = await startRedis();
    const probe = createRedisProbe({ redis: r.url }, ctx);
    expect((await probe.check(never())).ok).toBe(true);
    await r.stop();
    expect(await probe.check(never())).toEqual({ ok: false, reason: `redis 127.0.0.1:${r.port}: connection refused (nothing listening) [ECONNREFUSED]` });
    const nats = await startNats();
    try {
      const res = await createRedisProbe({ redis: String(nats.port) }, ctx).check(AbortSignal.timeout(5000));
      expect(res.ok).toBe(false);
    } finally {
      await nats.stop();
    }
  });

  it('rejects rediss:// clearly', () => {
    expect(() => createRedisProbe({ redis: 'rediss://h:1' }, ctx)).toThrow(/unit "stack": healthcheck redis rediss:\/\/ \(TLS\) is not supported/);
  });
});

// ---------------------------------------------------------------- nats

describe('nats probe', () => {
  const SUBJECT = 'bk_lite.get_login_module_domain_list';
  const REQUEST = { subject: SUBJECT, payload: { args: [], kwargs: {} }, expect: { success: true } };
  let js: NatsServer;
  let plain: NatsServer;
  beforeAll(async () => {
    [js, plain] = await Promise.all([startNats({ jetstream: true }), startNats()]);
  });
  afterAll(async () => {
    await Promise.all([js?.stop(), plain?.stop()]);
  });

  /** The nats_listener's side of the RPC: queue group = subject, JSON reply. */
  async function responder(url: string, reply: unknown): Promise<{ nc: NatsConnection; sub: Subscription; received: string[] }> {
    const nc = await natsConnect({ servers: url });
    const received: string[] = [];
    const sub = nc.subscribe(SUBJECT, {
      queue: SUBJECT,
      callback: (_err, msg) => {
        received.push(msg.string());
        msg.respond(typeof reply === 'string' ? reply : JSON.stringify(reply));
      },
    });
    await nc.flush();
    return { nc, sub, received };
  }

  it('connects, and fails with "connection refused" on a closed port', async () => {
    const probe = createNatsProbe({ nats: plain.url }, ctx);
    expect(probe.label).toBe(`nats ${plain.url}`);
    expect(await probe.check(never())).toEqual({ ok: true, detail: `connected to 127.0.0.1:${plain.port}` });
    const port = await freePort();
    expect(await createNatsProbe({ nats: `nats://127.0.0.1:${port}` }, ctx).check(never())).toEqual({
      ok: false,
      reason: `nats nats://127.0.0.1:${port}: connection refused (nothing listening) [ECONNREFUSED]`,
    });
  });

  it('jetstream: passes with -js, fails without', async () => {
    const res = await createNatsProbe({ nats: js.url, jetstream: true }, ctx).check(never());
    expect(res.ok && res.detail).toMatch(/jetstream ok/);
    expect(await createNatsProbe({ nats: plain.url, jetstream: true }, ctx).check(never())).toEqual({
      ok: false,
      reason: `nats ${plain.url} (jetstream): JetStream is not enabled on this server (start nats-server with -js)`,
    });
  });

  it('request: passes only while a responder answers as expected', async () => {
    const probe = createNatsProbe({ nats: js.url, jetstream: true, request: REQUEST }, ctx);
    expect(await probe.check(never())).toEqual({
      ok: false,
      reason: `nats ${js.url} (jetstream, request ${SUBJECT}): no responders on ${SUBJECT} (is the listener running and subscribed?)`,
    });
    const r = await responder(js.url, { success: true, result: ['domain.com'] });
    try {
      expect((await probe.check(never())).ok).toBe(true);
      expect(r.received).toEqual(['{"args":[],"kwargs":{}}']); // an object payload goes as JSON
      const deeper = createNatsProbe({ nats: js.url, request: { ...REQUEST, expect: { success: true, result: ['domain.com'] } } }, ctx);
      expect((await deeper.check(never())).ok).toBe(true);
      const regex = createNatsProbe({ nats: js.url, request: { subject: SUBJECT, payload: 'ping', expect: '"success":\\s*true' } }, ctx);
      expect((await regex.check(never())).ok).toBe(true);
      expect(r.received.at(-1)).toBe('ping'); // a string payload goes as text
    } finally {
      r.sub.unsubscribe();
      await r.nc.close();
    }
    expect((await probe.check(never())).ok).toBe(false);
  });

  it('request: a mismatching reply fails with the difference and an excerpt', async () => {
    const r = await responder(plain.url, { success: false, error: 'no domains', message: 'database not initialised' });
    try {
      const res = await createNatsProbe({ nats: plain.url, request: REQUEST }, ctx).check(never());
      expect(res).toEqual({
        ok: false,
        reason: `nats ${plain.url} (request ${SUBJECT}): reply on ${SUBJECT} did not match expect (at .success: expected true, got false): {"success":false,"error":"no domains","message":"database not initialised"}`,
      });
      const wantDomain = await createNatsProbe({ nats: plain.url, request: { ...REQUEST, expect: { result: ['domain.com'] } } }, ctx).check(never());
      expect(!wantDomain.ok && wantDomain.reason).toContain('at .result: missing');
      const regex = await createNatsProbe({ nats: plain.url, request: { subject: SUBJECT, expect: '^\\{"success":true' } }, ctx).check(never());
      expect(!regex.ok && regex.reason).toContain('did not match /^\\{"success":true/');
    } finally {
      await r.nc.close();
    }
    const text = await responder(plain.url, 'plain text, not json');
    try {
      const res = await createNatsProbe({ nats: plain.url, request: REQUEST }, ctx).check(never());
      expect(!res.ok && res.reason).toContain('is not JSON (expect is an object): plain text, not json');
    } finally {
      await text.nc.close();
    }
  });

  it('request: a responder that never answers times out within the bound', async () => {
    const nc = await natsConnect({ servers: plain.url });
    nc.subscribe(SUBJECT, { queue: SUBJECT, callback: () => undefined });
    await nc.flush();
    try {
      const res = await createNatsProbe({ nats: plain.url, request: REQUEST }, { ...ctx, timeoutMs: 400 }).check(never());
      expect(!res.ok && res.reason).toContain(`no reply on ${SUBJECT} within 400ms`);
      const aborted = await createNatsProbe({ nats: plain.url, request: REQUEST }, ctx).check(AbortSignal.timeout(300));
      expect(!aborted.ok && aborted.reason).toMatch(/: timed out$/);
    } finally {
      await nc.close();
    }
  });

  it('credentials: from the URL or options; a wrong password is an authorization error without the password', async () => {
    const secured = await startNats({ user: 'bk', pass: 'nats-secret-pw' });
    try {
      const withUrl = createNatsProbe({ nats: `nats://bk:nats-secret-pw@127.0.0.1:${secured.port}` }, ctx);
      expect(withUrl.label).toBe(`nats nats://bk:***@127.0.0.1:${secured.port}`);
      expect((await withUrl.check(never())).ok).toBe(true);
      expect((await createNatsProbe({ nats: secured.url, user: 'bk', pass: 'nats-secret-pw' }, ctx).check(never())).ok).toBe(true);
      const wrong = await createNatsProbe({ nats: `nats://bk:wrong-pw-123@127.0.0.1:${secured.port}` }, ctx).check(never());
      expect(!wrong.ok && wrong.reason).toContain('authorization violation');
      expect(JSON.stringify(wrong)).not.toContain('wrong-pw-123');
    } finally {
      await secured.stop();
    }
  });
});

// ---------------------------------------------------------------- postgres

describe('postgres probe', () => {
  const PW = 'bklite_dev_pass';
  let pg: PostgresServer;
  beforeAll(async () => {
    pg = await startPostgres({ password: PW });
    await pg.query('create table ready_flag (id int)');
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it('passes with `select 1`; the label hides the password', async () => {
    const probe = createPostgresProbe({ postgres: pg.url }, ctx);
    expect(probe.label).toBe(`postgres postgres://postgres:***@127.0.0.1:${pg.port}/postgres`);
    expect(await probe.check(never())).toEqual({ ok: true, detail: '1 row(s)' });
  });

  it('a query with a result set must return a row; one without only has to succeed', async () => {
    const empty = createPostgresProbe({ postgres: pg.url, query: 'select 1 from ready_flag limit 1' }, ctx);
    expect(await empty.check(never())).toEqual({ ok: false, reason: `postgres postgres://postgres:***@127.0.0.1:${pg.port}/postgres (select 1 from ready_flag limit 1): query returned no rows` });
    await pg.query('insert into ready_flag values (1)');
    expect(await empty.check(never())).toEqual({ ok: true, detail: '1 row(s)' });
    expect(await createPostgresProbe({ postgres: pg.url, query: "set application_name = 'x'" }, ctx).check(never())).toEqual({ ok: true, detail: 'query ok' });
    const bad = await createPostgresProbe({ postgres: pg.url, query: 'select 1 from base_user' }, ctx).check(never());
    expect(!bad.ok && bad.reason).toMatch(/relation "base_user" does not exist \[42P01\]$/);
  });

  it('wrong or missing password and unknown database: clear reasons, no password', async () => {
    const wrong = await createPostgresProbe({ postgres: pg.urlFor({ password: 'wrong-secret-pw' }) }, ctx).check(never());
    expect(wrong).toEqual({
      ok: false,
      reason: `postgres postgres://postgres:***@127.0.0.1:${pg.port}/postgres: password authentication failed for user "postgres" [28P01]`,
    });
    expect(JSON.stringify(wrong)).not.toContain('wrong-secret-pw');
    const none = await createPostgresProbe({ postgres: pg.urlFor({}) }, ctx).check(never());
    expect(!none.ok && none.reason).toContain('the server asks for a password and none was given');
    const nodb = await createPostgresProbe({ postgres: pg.urlFor({ password: PW, database: 'bklite' }) }, ctx).check(never());
    expect(!nodb.ok && nodb.reason).toMatch(/database "bklite" does not exist \[3D000\]$/);
  });

  it('fails while the server is down and passes once it is up', async () => {
    const port = await freePort();
    const url = `postgres://postgres:${PW}@127.0.0.1:${port}/postgres`;
    const probe = createPostgresProbe({ postgres: url }, ctx);
    expect(await probe.check(never())).toEqual({ ok: false, reason: `postgres postgres://postgres:***@127.0.0.1:${port}/postgres: connection refused (nothing listening) [ECONNREFUSED]` });
    const late = await startPostgres({ port, password: PW });
    try {
      expect((await probe.check(never())).ok).toBe(true);
    } finally {
      await late.stop();
    }
    expect((await probe.check(never())).ok).toBe(false);
  });

  it('on abort ends the connection; statement_timeout (= ctx.timeoutMs) ends the backend', async () => {
    // A sleeping backend does not notice its client left; the statement timeout bounds it.
    const probe = createPostgresProbe({ postgres: pg.url, query: 'select pg_sleep(60)' }, { ...ctx, timeoutMs: 2000 });
    const res = await probe.check(AbortSignal.timeout(500));
    expect(res).toEqual({ ok: false, reason: `${probe.label}: timed out` });
    await waitFor(async () => (await pg.query("select 1 from pg_stat_activity where query like 'select pg_sleep(60)%'")).length === 0, {
      timeout: 20_000,
      message: 'the pg_sleep backend to be gone',
    });
  });

  it('statement_timeout from ctx.timeoutMs stops a slow query server-side', async () => {
    const res = await createPostgresProbe({ postgres: pg.url, query: 'select pg_sleep(30)' }, { ...ctx, timeoutMs: 300 }).check(never());
    expect(res.ok).toBe(false);
    expect(!res.ok && res.reason).toMatch(/canceling statement due to statement timeout \[57014\]|Query read timeout/);
  });
});
