// The demo's stand-in programs on their own, against a real PostgreSQL and nats-server: the seed
// failures they must reproduce (no listener → no domain; no db-init → no login; no mlflow
// database → mlflow exits), the NATS RPC format, and idempotent db-init.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { connect, createInbox, JSONCodec, type NatsConnection } from 'nats';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bkliteVerify } from '../examples/bklite/checks.ts';
import { ensureDatabases } from '../src/tasks/postgres-ensure.ts';
import { isAlive } from '../src/util/proc.ts';
import { runVerify } from '../src/verify.ts';
import type { ResolvedVerifyCheck } from '../src/config/types.ts';
import { freePort } from './helpers/ports.ts';
import { startNats, startPostgres, type NatsServer, type PostgresServer } from './helpers/servers.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = join(import.meta.dirname, '..', 'examples', 'bklite-demo', 'bin');
const PASSWORD = 'demo-pg-pass';

let pgServer: PostgresServer;
let nats: NatsServer;
let env: NodeJS.ProcessEnv;
const started: Program[] = [];

interface Program {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<number | null>;
}

function run(script: string, extra: NodeJS.ProcessEnv = {}): Program {
  const child = spawn(process.execPath, [join(BIN, script)], { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const p = { child, pid: child.pid!, output: () => out, exited };
  started.push(p);
  return p;
}

async function stop(p: Program): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) {
    try {
      process.kill(-p.pid, 'SIGTERM');
    } catch {
      // gone
    }
    await p.exited;
  }
  await waitFor(() => !isAlive(p.pid), { message: `pid ${p.pid} gone` });
}

async function runToEnd(script: string, extra: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const p = run(script, extra);
  const code = await p.exited;
  return { code, output: p.output() };
}

async function startHttp(script: string, portVar: string, extra: NodeJS.ProcessEnv = {}): Promise<{ p: Program; url: string }> {
  const port = await freePort();
  const p = run(script, { [portVar]: String(port), ...extra });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (p.child.exitCode !== null) throw new Error(`${script} exited: ${p.output()}`);
      return fetch(url).then(
        () => true,
        () => false,
      );
    },
    { timeout: 20_000, message: `${script} listening` },
  );
  return { p, url };
}

function checks(serverUrl: string): ResolvedVerifyCheck[] {
  return bkliteVerify(serverUrl).map((c) => ({
    name: c.name,
    method: c.method ?? 'GET',
    url: c.url ?? '',
    browser: undefined,
    hint: c.hint,
    headers: {},
    body: c.body,
    expectStatus: undefined,
    expect: c.expect ?? {},
    timeoutMs: 10_000,
  }));
}

async function getJson(url: string): Promise<unknown> {
  return (await fetch(url)).json();
}

beforeAll(async () => {
  [pgServer, nats] = await Promise.all([startPostgres({ password: PASSWORD }), startNats({ jetstream: true })]);
  await pgServer.query('create database bklite');
  env = {
    ...process.env,
    DB_HOST: '127.0.0.1',
    DB_PORT: String(pgServer.port),
    DB_USER: 'postgres',
    DB_PASSWORD: PASSWORD,
    DB_NAME: 'bklite',
    NATS_SERVERS: nats.url,
    NATS_NAMESPACE: 'bk_lite',
    WEB_COMPILE_MS: '50',
  };
}, 60_000);

afterEach(async () => {
  await Promise.all(started.splice(0).map(stop));
});

afterAll(async () => {
  await Promise.all([pgServer?.stop(), nats?.stop()]);
});

describe('the demo stand-ins', () => {
  it('reproduce the seed failure, then pass verify once db-init ran and the listener is up', async () => {
    const { url } = await startHttp('server.mjs', 'SERVER_PORT');

    // No nats_listener, no db-init: what the first BK-Lite setup looked like.
    expect(await getJson(`${url}/api/v1/core/api/get_domain_list/`)).toEqual({ result: true, data: [] });
    const before = await runVerify(checks(url));
    expect(before.ok).toBe(false);
    expect(before.results.map((r) => r.detail)).toEqual([
      'data does not contain "domain.com" (got [])',
      'result is false, expected true; data.token is missing (no data)',
    ]);

    const init = await runToEnd('db-init.mjs', { DEMO_MIGRATIONS: join(BIN, '..', 'migrations') });
    expect(init.code, init.output).toBe(0);
    expect(init.output).toContain('Applying demo.0001_base_user... OK');
    expect(init.output).toContain('create_user admin: created');

    // Login works now; the domain list still needs the listener.
    const half = await runVerify(checks(url));
    expect(half.results.map((r) => r.ok)).toEqual([false, true]);

    const listener = run('nats-listener.mjs');
    await waitFor(() => listener.output().includes('nats_listener ready'), { timeout: 20_000, message: `listener ready: ${listener.output()}` });
    const after = await runVerify(checks(url));
    expect(after.results.map((r) => [r.name, r.ok, r.detail])).toEqual([
      ['the login page lists domain.com', true, 'HTTP 200, 2 expectation(s) met'],
      ['admin can log in', true, 'HTTP 200, 2 expectation(s) met'],
    ]);

    // The web page shows what the server returns.
    const web = await startHttp('web.mjs', 'WEB_PORT', { BKLITE_SERVER_URL: url });
    const page = await (await fetch(`${web.url}/auth/signin`)).text();
    expect(page).toContain('<option>domain.com</option>');
    await stop(listener);
    expect(await (await fetch(`${web.url}/auth/signin`)).text()).toContain('no domain available — is nats_listener running?');
  }, 90_000);

  it('db-init is idempotent, and the wrong password is refused', async () => {
    const first = await runToEnd('db-init.mjs');
    expect(first.code, first.output).toBe(0);
    const second = await runToEnd('db-init.mjs');
    expect(second.code, second.output).toBe(0);
    expect(second.output).toContain('No migrations to apply.');
    expect(second.output).toContain('create_user admin: exists');
    const db = new pg.Client({ connectionString: pgServer.urlFor({ password: PASSWORD, database: 'bklite' }) });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: number }>("select count(*)::int as n from base_user where username = 'admin'");
      expect(rows[0]!.n).toBe(1);
      const migrations = await db.query<{ n: number }>('select count(*)::int as n from demo_migrations');
      expect(migrations.rows[0]!.n).toBe(2);
    } finally {
      await db.end();
    }

    const { url } = await startHttp('server.mjs', 'SERVER_PORT');
    const res = await fetch(`${url}/api/v1/core/api/login/`, { method: 'POST', body: JSON.stringify({ username: 'admin', password: 'nope', domain: 'domain.com' }) });
    expect(await res.json()).toEqual({ result: false, message: 'Username or password is incorrect' });
  }, 60_000);

  it('the listener speaks BK-Lite’s NATS RPC: queue group = subject, {args, kwargs} in, {success, result} out', async () => {
    await runToEnd('db-init.mjs');
    const a = run('nats-listener.mjs');
    const b = run('nats-listener.mjs');
    await waitFor(() => a.output().includes('nats_listener ready') && b.output().includes('nats_listener ready'), { timeout: 20_000, message: 'two listeners ready' });
    expect(a.output()).toContain('listening on bk_lite.get_login_module_domain_list (queue bk_lite.get_login_module_domain_list)');

    const nc: NatsConnection = await connect({ servers: nats.url });
    try {
      const codec = JSONCodec();
      // Publish with our own reply inbox and count the answers: in a queue group exactly one listener answers.
      const inbox = createInbox();
      const replies: unknown[] = [];
      const sub = nc.subscribe(inbox, { callback: (_e, m) => replies.push(codec.decode(m.data)) });
      for (let i = 0; i < 6; i++) nc.publish('bk_lite.get_login_module_domain_list', codec.encode({ args: [], kwargs: {} }), { reply: inbox });
      await nc.flush();
      await waitFor(() => replies.length >= 6, { timeout: 10_000, message: 'six replies' });
      // A second answer per request would arrive together with the first; one more round trip lets it land.
      await nc.flush();
      await nc.request('bk_lite.get_login_module_domain_list', codec.encode({ args: [], kwargs: {} }), { timeout: 5000 });
      expect(replies).toHaveLength(6);
      expect(replies[0]).toEqual({ success: true, result: ['domain.com'] });
      sub.unsubscribe();
    } finally {
      await nc.close();
    }
  }, 60_000);

  it('mlflow exits without its database; ensureDatabases creates it and mlflow serves /health', async () => {
    await pgServer.query('drop database if exists mlflow');
    const port = await freePort();
    const mlflowEnv = { MLFLOW_PORT: String(port), MLFLOW_DB_URL: pgServer.urlFor({ password: PASSWORD, database: 'mlflow' }) };
    const crash = await runToEnd('mlflow.mjs', mlflowEnv);
    expect(crash.code).toBe(1);
    expect(crash.output).toMatch(/sqlalchemy\.exc\.OperationalError: database "mlflow" does not exist/);

    const ensured = await ensureDatabases(pgServer.urlFor({ password: PASSWORD, database: 'postgres' }), ['mlflow']);
    expect(ensured).toEqual({ ok: true, created: ['mlflow'], existing: [] });
    const again = await ensureDatabases(pgServer.urlFor({ password: PASSWORD, database: 'postgres' }), ['mlflow']);
    expect(again).toEqual({ ok: true, created: [], existing: ['mlflow'] });

    run('mlflow.mjs', mlflowEnv);
    const health = await waitFor(
      () =>
        fetch(`http://127.0.0.1:${port}/health`).then(
          (r) => r.text(),
          () => undefined,
        ),
      { timeout: 20_000, message: 'mlflow /health' },
    );
    expect(health).toBe('OK');
  }, 60_000);
});
