// The real BK-Lite development stack (design.md, "The real stack"): the Docker dependencies from
// docker-compose.dev.yml probed from the host, the installs (dev.sh `install`), the 13 init
// commands of dev.sh `db init`, then nats_listener, server and web. A builder, so both this
// directory's config and the repository's root config use it.
//
// Every port and password comes from the environment, with BK-Lite's dev defaults:
//   POSTGRES_USER postgres, POSTGRES_PASSWORD bklite_dev_pass, POSTGRES_PORT 15432, POSTGRES_DB bklite
//   REDIS_PASSWORD bklite_redis_pass, REDIS_PORT 16380        NATS_PORT 14222, NATS_NAMESPACE bk_lite
//   MINIO_PORT 19000, VICTORIA_METRICS_PORT 18428, VICTORIA_LOGS_PORT 19428, FALKORDB_PORT 16479
//   MLFLOW_PORT 15000, SERVER_PORT 18001, WEB_PORT 3011
//   BKLITE_CELERY=1 adds the celery worker and beat units.
// Each one changes everything that uses it: probes, the commands (`--port`), the values written
// to and checked in server/.env and web/.env.local, and verify. server/.env is checked against
// these values, not read for them: the stack is the source, the file has to agree with it.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDotenv } from '../../src/config/dotenv.ts';
import type { DependencyCondition, TaskUnitConfig, UserConfig } from '../../src/index.ts';
import { bkliteWebVerify } from './checks.ts';

export const BKLITE_DEFAULTS = Object.freeze({
  POSTGRES_USER: 'postgres',
  POSTGRES_PASSWORD: 'bklite_dev_pass',
  POSTGRES_HOST: '127.0.0.1',
  POSTGRES_PORT: '15432',
  POSTGRES_DB: 'bklite',
  REDIS_PASSWORD: 'bklite_redis_pass',
  REDIS_PORT: '16380',
  NATS_PORT: '14222',
  NATS_NAMESPACE: 'bk_lite',
  MINIO_PORT: '19000',
  MINIO_ROOT_USER: 'minioadmin',
  MINIO_ROOT_PASSWORD: 'minioadmin123',
  VICTORIA_METRICS_PORT: '18428',
  VICTORIA_LOGS_PORT: '19428',
  FALKORDB_PORT: '16479',
  MLFLOW_PORT: '15000',
  SERVER_PORT: '18001',
  WEB_PORT: '3011',
});

type Key = keyof typeof BKLITE_DEFAULTS;

/**
 * dev.sh `db init`, in its order. The first five must succeed (no admin user, no login); dev.sh
 * runs the rest with `|| true`, so here they are optional tasks: a failure shows in `status`
 * and blocks nothing. `needs`: the service each one talks to besides PostgreSQL.
 */
export const BKLITE_INIT_STEPS: readonly { command: string; unit?: string; needs?: readonly string[] }[] = Object.freeze([
  { command: 'migrate' },
  { command: 'createcachetable django_cache' },
  { command: 'init_realm_resource' },
  { command: 'init_login_settings' },
  { command: 'create_user admin password --email=admin@bklite.net --is_superuser' },
  { command: 'model_init', unit: 'init-model', needs: ['falkordb'] },
  { command: 'plugin_init', unit: 'init-plugin', needs: ['victoria-metrics'] },
  { command: 'node_init', unit: 'init-node', needs: [] },
  { command: 'log_init', unit: 'init-log', needs: ['victoria-logs'] },
  { command: 'init_bot', unit: 'init-bot', needs: ['minio'] },
  { command: 'init_channel', unit: 'init-channel', needs: [] },
  { command: 'init_llm', unit: 'init-llm', needs: ['minio'] },
  { command: 'create_builtin_rules --update', unit: 'init-builtin-rules', needs: [] },
]);

export interface BkliteOptions {
  /** The BK-Lite checkout: docker-compose.dev.yml, server/, web/. */
  root: string;
  env?: NodeJS.ProcessEnv;
}

/** web/.env.local's NEXTAPI_URL as it is now (for verify's hint), or undefined. */
function currentNextApiUrl(root: string): string | undefined {
  try {
    const parsed = parseDotenv(readFileSync(join(root, 'web', '.env.local'), 'utf8'));
    return parsed.ok ? parsed.vars['NEXTAPI_URL'] : undefined;
  } catch {
    return undefined;
  }
}

export function bkliteConfig(opts: BkliteOptions): UserConfig {
  const env = opts.env ?? process.env;
  const get = (key: Key): string => env[key] || BKLITE_DEFAULTS[key];
  const pgUrl = (db: string): string =>
    `postgres://${encodeURIComponent(get('POSTGRES_USER'))}:${encodeURIComponent(get('POSTGRES_PASSWORD'))}@${get('POSTGRES_HOST')}:${get('POSTGRES_PORT')}/${encodeURIComponent(db)}`;
  const local = (port: Key, path = ''): string => `http://127.0.0.1:${get(port)}${path}`;
  const namespace = get('NATS_NAMESPACE');
  const nats = `nats://127.0.0.1:${get('NATS_PORT')}`;
  const redis = (db: number): string => `redis://:${encodeURIComponent(get('REDIS_PASSWORD'))}@127.0.0.1:${get('REDIS_PORT')}/${db}`;
  const celery = env['BKLITE_CELERY'] === '1';
  // Python output through a pipe is block-buffered: without this, log lines arrive late and in lumps.
  const python = { PYTHONUNBUFFERED: '1' };
  const manage = (cmd: string): string => `uv run python manage.py ${cmd}`;
  const migrations = 'server/**/migrations/*.py';

  // What server/.env must say for the server to reach this stack (checked when the file exists)…
  const serverExpect: Record<string, string> = {
    DB_HOST: get('POSTGRES_HOST'),
    DB_PORT: get('POSTGRES_PORT'),
    DB_NAME: get('POSTGRES_DB'),
    DB_USER: get('POSTGRES_USER'),
    DB_PASSWORD: get('POSTGRES_PASSWORD'),
    REDIS_CACHE_URL: redis(0),
    NATS_SERVERS: nats,
    NATS_NAMESPACE: namespace,
    ...(celery ? { CELERY_BROKER_URL: redis(1), CELERY_RESULT_BACKEND: redis(2) } : {}),
  };
  // …and what a new one gets (server/envs/.env.example's other keys keep their template values).
  const serverEnvFile = {
    file: 'server/.env',
    template: 'server/envs/.env.example',
    hint: 'BK-Lite\'s template is server/envs/.env.example',
    create: {
      DEBUG: 'True',
      ...serverExpect,
      CELERY_BROKER_URL: redis(1),
      CELERY_RESULT_BACKEND: redis(2),
      VICTORIALOGS_HOST: local('VICTORIA_LOGS_PORT'),
      MINIO_ENDPOINT: `127.0.0.1:${get('MINIO_PORT')}`,
      MINIO_ACCESS_KEY: get('MINIO_ROOT_USER'),
      MINIO_SECRET_KEY: get('MINIO_ROOT_PASSWORD'),
      MINIO_USE_HTTPS: 'False',
    },
    expect: serverExpect,
  };
  const serverUrl = local('SERVER_PORT');
  const webUrl = local('WEB_PORT');
  const webEnvFile = {
    file: 'web/.env.local',
    template: 'web/.env.example',
    hint: 'BK-Lite\'s template is web/.env.example',
    create: { NEXTAUTH_URL: webUrl, NEXTAUTH_SECRET: '${random}', NEXTAPI_URL: serverUrl },
    expect: { NEXTAPI_URL: serverUrl },
  };

  // The tolerated init steps, each after the previous one (dev.sh's order) and the services it talks to.
  const tolerated: Record<string, TaskUnitConfig> = {};
  let previous = 'db-init';
  for (const step of BKLITE_INIT_STEPS) {
    if (!step.unit) continue;
    const name = step.command.split(' ')[0]!;
    const dependsOn: Record<string, DependencyCondition> = { 'db-init': 'completed', [previous]: 'completed' };
    for (const service of step.needs ?? []) dependsOn[service] = 'healthy';
    tolerated[step.unit] = {
      kind: 'task',
      optional: true,
      description: `manage.py ${step.command} (dev.sh runs it with || true: a failure is reported, login does not need it)`,
      cwd: 'server',
      command: manage(step.command),
      env: python,
      dependsOn,
      once: { inputs: [migrations, `server/apps/*/management/commands/${name}.py`] },
      requires: [serverEnvFile],
    };
    previous = step.unit;
  }
  const required = BKLITE_INIT_STEPS.filter((s) => !s.unit).map((s) => manage(s.command));

  return {
    root: opts.root,
    compose: { file: 'docker-compose.dev.yml' },
    units: {
      // ---------------------------------------------------------------- Docker dependencies
      // Probed from the host: inside the containers, nats (a scratch image) has no wget and the
      // compose healthchecks cannot pass.
      postgres: {
        kind: 'compose',
        service: 'postgres',
        healthcheck: { postgres: pgUrl(get('POSTGRES_DB')), interval: '1s', startPeriod: '60s' },
      },
      redis: {
        kind: 'compose',
        service: 'redis',
        healthcheck: { redis: `redis://127.0.0.1:${get('REDIS_PORT')}`, password: get('REDIS_PASSWORD'), interval: '1s', startPeriod: '30s' },
      },
      nats: {
        kind: 'compose',
        service: 'nats',
        healthcheck: { nats: nats, jetstream: true, interval: '1s', startPeriod: '30s' },
      },
      minio: {
        kind: 'compose',
        service: 'minio',
        healthcheck: { http: local('MINIO_PORT', '/minio/health/live'), interval: '1s', startPeriod: '60s' },
      },
      falkordb: {
        kind: 'compose',
        service: 'falkordb',
        healthcheck: { tcp: `127.0.0.1:${get('FALKORDB_PORT')}`, interval: '1s', startPeriod: '60s' },
      },
      'victoria-metrics': {
        kind: 'compose',
        service: 'victoria-metrics',
        healthcheck: { http: local('VICTORIA_METRICS_PORT', '/health'), interval: '1s', startPeriod: '60s' },
      },
      'victoria-logs': {
        kind: 'compose',
        service: 'victoria-logs',
        healthcheck: { http: local('VICTORIA_LOGS_PORT', '/health'), interval: '1s', startPeriod: '60s' },
      },

      // ---------------------------------------------------------------- MLflow and its database
      'mlflow-db': {
        kind: 'task',
        description: 'the `mlflow` database (without it MLflow restarts forever)',
        postgres: { url: pgUrl('postgres'), ensureDatabases: ['mlflow'] },
        dependsOn: { postgres: 'healthy' },
      },
      mlflow: {
        kind: 'compose',
        service: 'mlflow',
        dependsOn: { 'mlflow-db': 'completed', postgres: 'healthy', minio: 'healthy' },
        healthcheck: { http: local('MLFLOW_PORT', '/health'), interval: '2s', startPeriod: '2m' },
      },

      // ---------------------------------------------------------------- installs (dev.sh install)
      // Without the `dev` extra django_extensions is missing and migrate fails; without
      // node_modules `next` is not found. Run when the lock files change or the output is gone.
      'install-server': {
        kind: 'task',
        description: 'uv sync --all-groups --all-extras in server/ (skipped while pyproject.toml and uv.lock are unchanged and server/.venv exists)',
        cwd: 'server',
        command: 'uv sync --all-groups --all-extras',
        once: { inputs: ['server/pyproject.toml', 'server/uv.lock'], outputs: ['server/.venv'] },
      },
      'install-web': {
        kind: 'task',
        description: 'pnpm install in web/ (skipped while package.json and pnpm-lock.yaml are unchanged and web/node_modules exists)',
        cwd: 'web',
        command: 'pnpm install',
        once: { inputs: ['web/package.json', 'web/pnpm-lock.yaml'], outputs: ['web/node_modules'] },
      },

      // ---------------------------------------------------------------- the application
      'db-init': {
        kind: 'task',
        description: 'migrate, cache table, realm, login settings, the admin user (skipped when system_mgmt_user has admin and the migrations are unchanged)',
        cwd: 'server',
        command: required.join(' && '),
        env: python,
        dependsOn: { 'install-server': 'completed', postgres: 'healthy', redis: 'healthy', nats: 'healthy' },
        requires: [serverEnvFile],
        once: {
          inputs: [migrations],
          // create_user writes system_mgmt_user; base_user only gets rows after a login.
          skipIf: { postgres: pgUrl(get('POSTGRES_DB')), query: "select 1 from system_mgmt_user where username = 'admin' limit 1" },
        },
      },
      ...tolerated,
      nats_listener: {
        description: 'serves the NATS RPC the server calls (without it the login page has no domain)',
        cwd: 'server',
        command: manage('nats_listener'),
        env: python,
        requires: [serverEnvFile],
        dependsOn: { nats: 'healthy', 'db-init': 'completed' },
        healthcheck: {
          nats,
          request: { subject: `${namespace}.get_login_module_domain_list`, payload: { args: [], kwargs: {} }, expect: { success: true } },
          interval: '2s',
          timeout: '5s',
          startPeriod: '2m',
        },
        // Its subscription dies with the NATS connection: when nats restarts, so does the listener.
        onDependencyFailure: 'restart',
        restart: { policy: 'always' },
        // uvicorn --reload follows its own edits; these keep the old code until restarted.
        watch: { paths: ['server/**/*.py'] },
      },
      server: {
        cwd: 'server',
        command: `uv run uvicorn asgi:application --host 0.0.0.0 --port ${get('SERVER_PORT')} --reload`,
        requires: [serverEnvFile],
        env: python,
        dependsOn: { postgres: 'healthy', redis: 'healthy', nats: 'healthy', 'db-init': 'completed' },
        healthcheck: { http: local('SERVER_PORT', '/admin/login/'), interval: '1s', retries: 3, startPeriod: '2m' },
        restart: { policy: 'always', backoff: { initial: '500ms', max: '30s' }, maxRestarts: 10, window: '5m' },
        stop: { signal: 'SIGTERM', timeout: '10s' },
      },
      web: {
        cwd: 'web',
        // pnpm appends the argument to the package's `next dev … --port=3000`; the last --port wins.
        command: `pnpm dev --port ${get('WEB_PORT')}`,
        requires: [webEnvFile],
        dependsOn: { server: 'healthy', 'install-web': 'completed' },
        // next dev compiles a page on its first request: slow, so failures in the first minutes do not count.
        healthcheck: { http: local('WEB_PORT', '/auth/signin'), interval: '2s', timeout: '60s', startPeriod: '5m' },
        restart: { policy: 'always' },
      },
      'celery-worker': {
        enabled: celery,
        description: 'celery worker (BKLITE_CELERY=1)',
        cwd: 'server',
        command: 'uv run celery -A apps.core.celery worker --loglevel=info --pool threads --concurrency=4',
        env: python,
        requires: [serverEnvFile],
        dependsOn: { redis: 'healthy', postgres: 'healthy', 'db-init': 'completed' },
        restart: { policy: 'always' },
        // uvicorn --reload follows its own edits; these keep the old code until restarted.
        watch: { paths: ['server/**/*.py'] },
      },
      'celery-beat': {
        enabled: celery,
        description: 'celery beat (BKLITE_CELERY=1)',
        cwd: 'server',
        command: 'uv run celery -A apps.core.celery beat --loglevel=info',
        env: python,
        requires: [serverEnvFile],
        dependsOn: { redis: 'healthy', postgres: 'healthy', 'db-init': 'completed' },
        restart: { policy: 'always' },
        // uvicorn --reload follows its own edits; these keep the old code until restarted.
        watch: { paths: ['server/**/*.py'] },
      },
    },
    verify: bkliteWebVerify({ serverUrl, webUrl, nextApiUrl: currentNextApiUrl(opts.root) }),
  };
}
