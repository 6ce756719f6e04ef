// The BK-Lite demo stack: the same units, dependencies, probes and verify checks as the real
// stack (examples/bklite/supervisor.config.ts), without BK-Lite or Docker. The dependencies are
// the real programs — PostgreSQL, redis-server, nats-server (JetStream) — run as processes with
// their data under one directory; server, web, nats_listener, db-init and mlflow are small Node
// stand-ins that fail the way the real ones do (no listener → the login page has no domain;
// no `admin` → login fails; no `mlflow` database → mlflow crash-loops).
//
// A builder rather than a config file, so the demo's own config, the repository's root config and
// the tests can place the stack (root, data, ports) where they need it.

import { join, relative, resolve } from 'node:path';
import type { UserConfig } from '../../src/index.ts';
import { bkliteVerify } from '../bklite/checks.ts';
import { choosePgData } from './pg-data.ts';

/** This directory: the stand-in programs, the migrations. */
export const DEMO_DIR = import.meta.dirname;

/** Every knob with its default; each is read from the environment variable of the same name. */
export const DEMO_DEFAULTS = Object.freeze({
  POSTGRES_PORT: 15432,
  POSTGRES_USER: 'postgres',
  POSTGRES_PASSWORD: 'bklite_dev_pass',
  POSTGRES_DB: 'bklite',
  REDIS_PORT: 16380,
  REDIS_PASSWORD: 'bklite_redis_pass',
  NATS_PORT: 14222,
  NATS_NAMESPACE: 'bk_lite',
  SERVER_PORT: 18001,
  WEB_PORT: 3011,
  MLFLOW_PORT: 15000,
});

export interface DemoOptions {
  /** Base of the run: `.supervisor/` and `logs/` go here. */
  root: string;
  /** PostgreSQL, NATS and redis data (default $BKLITE_DEMO_DATA, else <this dir>/.data). */
  dataDir?: string;
  /** Where ports, passwords and BKLITE_DEMO_DATA are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Explicit values win over the environment (tests use free ports). */
  overrides?: Partial<Record<keyof typeof DEMO_DEFAULTS, string | number>>;
}

export interface DemoSettings {
  ports: { postgres: number; redis: number; nats: number; server: number; web: number; mlflow: number };
  postgres: { user: string; password: string; db: string; url: string; urlFor: (db: string) => string };
  redis: { password: string; url: string };
  nats: { url: string; namespace: string };
  dataDir: string;
  serverUrl: string;
  webUrl: string;
}

function setting(key: keyof typeof DEMO_DEFAULTS, opts: DemoOptions): string {
  const env = opts.env ?? process.env;
  const v = opts.overrides?.[key] ?? env[key];
  return v === undefined || v === '' ? String(DEMO_DEFAULTS[key]) : String(v);
}

function port(key: keyof typeof DEMO_DEFAULTS, opts: DemoOptions): number {
  const raw = setting(key, opts);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${key}=${raw} is not a TCP port (1-65535)`);
  return n;
}

export function demoSettings(opts: DemoOptions): DemoSettings {
  const env = opts.env ?? process.env;
  const ports = {
    postgres: port('POSTGRES_PORT', opts),
    redis: port('REDIS_PORT', opts),
    nats: port('NATS_PORT', opts),
    server: port('SERVER_PORT', opts),
    web: port('WEB_PORT', opts),
    mlflow: port('MLFLOW_PORT', opts),
  };
  const user = setting('POSTGRES_USER', opts);
  const password = setting('POSTGRES_PASSWORD', opts);
  const db = setting('POSTGRES_DB', opts);
  const urlFor = (name: string): string =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${ports.postgres}/${encodeURIComponent(name)}`;
  const redisPassword = setting('REDIS_PASSWORD', opts);
  return {
    ports,
    postgres: { user, password, db, url: urlFor(db), urlFor },
    redis: { password: redisPassword, url: `redis://127.0.0.1:${ports.redis}` },
    nats: { url: `nats://127.0.0.1:${ports.nats}`, namespace: setting('NATS_NAMESPACE', opts) },
    dataDir: resolve(opts.root, opts.dataDir ?? (env['BKLITE_DEMO_DATA'] || join(DEMO_DIR, '.data'))),
    serverUrl: `http://127.0.0.1:${ports.server}`,
    webUrl: `http://127.0.0.1:${ports.web}`,
  };
}

export function demoConfig(opts: DemoOptions): UserConfig {
  const s = demoSettings(opts);
  const bin = (name: string): string => join(DEMO_DIR, 'bin', name);
  const node = process.execPath;
  // Not always under dataDir: as root, PostgreSQL's account may not reach it (see pg-data.ts).
  const pg = choosePgData(s.dataDir, bin('pg.sh'));
  const pgData = pg.dir;
  const redisDir = join(s.dataDir, 'redis');
  // `once.inputs` are globs relative to root; the migrations live next to this file.
  const migrations = relative(opts.root, join(DEMO_DIR, 'migrations')).split('\\').join('/') || '.';

  return {
    root: opts.root,
    // What BK-Lite's server reads (server/config/components/*.py), so the stand-ins speak the same language.
    env: {
      DB_HOST: '127.0.0.1',
      DB_PORT: s.ports.postgres,
      DB_USER: s.postgres.user,
      DB_PASSWORD: s.postgres.password,
      DB_NAME: s.postgres.db,
      REDIS_URL: `redis://:${encodeURIComponent(s.redis.password)}@127.0.0.1:${s.ports.redis}/0`,
      NATS_SERVERS: s.nats.url,
      NATS_NAMESPACE: s.nats.namespace,
    },
    units: {
      'pg-initdb': {
        kind: 'task',
        description: 'initdb of the demo PostgreSQL (once; a no-op when the data directory is there)',
        // Not `once`: a deleted data directory must be noticed on the next `up`, whatever the
        // fingerprint says; the script's own check (PG_VERSION present) is the truth and is quick.
        command: [node, bin('pg-initdb.mjs')],
        env: { PGDATA: pgData, ...(pg.note ? { BKLITE_DEMO_PGDATA_NOTE: pg.note } : {}) },
      },
      postgres: {
        description: `PostgreSQL (as the compose service in BK-Lite; here the real server as a process), data in ${pgData}`,
        // exec all the way down (sh → setpriv → postgres): postgres itself is the supervised
        // process and its group leader, so the stop signal reaches the postmaster, and SIGINT is
        // its "fast shutdown" (SIGTERM would wait for every client to disconnect).
        command: [
          '/bin/sh', bin('pg.sh'), 'postgres',
          '-D', pgData,
          '-p', String(s.ports.postgres),
          '-c', 'listen_addresses=127.0.0.1',
          '-c', 'unix_socket_directories=',
          // A disposable dev database on a shared machine: durability is not worth the fsyncs.
          '-c', 'fsync=off',
          '-c', 'synchronous_commit=off',
        ],
        dependsOn: { 'pg-initdb': 'completed' },
        healthcheck: { postgres: s.postgres.url, interval: '500ms', retries: 3 },
        stop: { signal: 'SIGINT', timeout: '15s' },
        restart: { policy: 'always' },
      },
      redis: {
        description: 'redis-server with a password (the password goes through a 0600 config file, not argv)',
        command: `umask 022 && mkdir -p ${sq(redisDir)} && umask 077 && printf 'requirepass "%s"\\n' "$REDIS_PASSWORD" > ${sq(join(redisDir, 'redis.conf'))} && exec redis-server ${sq(join(redisDir, 'redis.conf'))} --port ${s.ports.redis} --bind 127.0.0.1 --dir ${sq(redisDir)} --save '' --appendonly no`,
        env: { REDIS_PASSWORD: s.redis.password },
        healthcheck: { redis: s.redis.url, password: s.redis.password, interval: '500ms' },
        restart: { policy: 'always' },
      },
      nats: {
        description: 'nats-server with JetStream (-js -sd <data>/nats)',
        // The data directory is made here, 0755: nats-server would make it 0750 when it is the
        // first unit to need it, and PostgreSQL's account (as root, pg.sh runs it unprivileged)
        // could then no longer reach the cluster beside it.
        command: [
          '/bin/sh', '-c', 'umask 022 && mkdir -p "$0" && exec nats-server "$@"', join(s.dataDir, 'nats'),
          '-a', '127.0.0.1', '-p', String(s.ports.nats), '-js', '-sd', join(s.dataDir, 'nats'), '-n', 'bklite-demo',
        ],
        healthcheck: { nats: s.nats.url, jetstream: true, interval: '500ms' },
        // nats-server exits 0 on SIGINT but 1 on SIGTERM; both shut down cleanly.
        stop: { signal: 'SIGINT' },
        restart: { policy: 'always' },
      },
      'mlflow-db': {
        kind: 'task',
        description: 'the `mlflow` database MLflow needs (created when missing)',
        postgres: { url: s.postgres.urlFor('postgres'), ensureDatabases: ['mlflow'] },
        dependsOn: { postgres: 'healthy' },
      },
      mlflow: {
        description: 'MLflow stand-in: exits like MLflow when its database is missing',
        command: [node, bin('mlflow.mjs')],
        env: { MLFLOW_PORT: s.ports.mlflow, MLFLOW_DB_URL: s.postgres.urlFor('mlflow') },
        dependsOn: { 'mlflow-db': 'completed', postgres: 'healthy' },
        healthcheck: { http: `http://127.0.0.1:${s.ports.mlflow}/health`, interval: '1s' },
        restart: { policy: 'always' },
      },
      'db-init': {
        kind: 'task',
        description: 'migrate, createcachetable, init_login_settings, create_user admin (skipped when base_user has rows and the migrations are unchanged)',
        command: [node, bin('db-init.mjs')],
        env: { DEMO_MIGRATIONS: join(DEMO_DIR, 'migrations') },
        dependsOn: { postgres: 'healthy', redis: 'healthy', nats: 'healthy' },
        once: {
          inputs: [`${migrations}/*.sql`],
          skipIf: { postgres: s.postgres.url, query: 'select 1 from base_user limit 1' },
        },
      },
      nats_listener: {
        description: 'answers the NATS RPC the server calls (without it the login page has no domain)',
        command: [node, bin('nats-listener.mjs')],
        env: { PYTHONUNBUFFERED: '1' },
        dependsOn: { nats: 'healthy', 'db-init': 'completed' },
        healthcheck: {
          nats: s.nats.url,
          request: { subject: `${s.nats.namespace}.get_login_module_domain_list`, payload: { args: [], kwargs: {} }, expect: { success: true } },
          interval: '1s',
          retries: 3,
        },
        // Its subscription dies with the NATS connection: when nats restarts, so does the listener.
        onDependencyFailure: 'restart',
        restart: { policy: 'always' },
      },
      server: {
        description: 'the API server stand-in (uvicorn asgi:application in BK-Lite)',
        command: [node, bin('server.mjs')],
        env: { SERVER_PORT: s.ports.server },
        dependsOn: { postgres: 'healthy', redis: 'healthy', nats: 'healthy', 'db-init': 'completed' },
        healthcheck: { http: `${s.serverUrl}/admin/login/`, interval: '1s', retries: 3 },
        restart: { policy: 'always' },
      },
      web: {
        description: 'the web stand-in (next dev in BK-Lite): a sign-in page listing the domains',
        command: [node, bin('web.mjs')],
        env: { WEB_PORT: s.ports.web, BKLITE_SERVER_URL: s.serverUrl },
        dependsOn: { server: 'healthy' },
        healthcheck: { http: `${s.webUrl}/auth/signin`, interval: '2s', timeout: '30s', startPeriod: '5m' },
        restart: { policy: 'always' },
      },
    },
    verify: bkliteVerify(s.serverUrl),
  };
}

/** A path as one /bin/sh word. */
function sq(word: string): string {
  return `'${word.split("'").join(`'\\''`)}'`;
}
