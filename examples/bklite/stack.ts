// The real BK-Lite development stack (design.md, "The real stack"): the Docker dependencies from
// docker-compose.dev.yml probed from the host, the init tasks, then nats_listener, server and web.
// A builder, so both this directory's config and the repository's root config use it.
//
// Every port and password comes from the environment, with BK-Lite's dev defaults:
//   POSTGRES_USER postgres, POSTGRES_PASSWORD bklite_dev_pass, POSTGRES_PORT 15432, POSTGRES_DB bklite
//   REDIS_PASSWORD bklite_redis_pass, REDIS_PORT 16380        NATS_PORT 14222, NATS_NAMESPACE bk_lite
//   MINIO_PORT 19000, VICTORIA_METRICS_PORT 18428, VICTORIA_LOGS_PORT 19428, FALKORDB_PORT 16479
//   MLFLOW_PORT 15000, SERVER_PORT 18001, WEB_PORT 3011
//   BKLITE_CELERY=1 adds the celery worker and beat units.
// (POSTGRES_* fall back to the DB_* names BK-Lite's server/.env uses.)

import type { UserConfig } from '../../src/index.ts';
import { bkliteVerify } from './checks.ts';

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
  VICTORIA_METRICS_PORT: '18428',
  VICTORIA_LOGS_PORT: '19428',
  FALKORDB_PORT: '16479',
  MLFLOW_PORT: '15000',
  SERVER_PORT: '18001',
  WEB_PORT: '3011',
});

type Key = keyof typeof BKLITE_DEFAULTS;

const FALLBACK_NAMES: Partial<Record<Key, string>> = {
  POSTGRES_USER: 'DB_USER',
  POSTGRES_PASSWORD: 'DB_PASSWORD',
  POSTGRES_HOST: 'DB_HOST',
  POSTGRES_PORT: 'DB_PORT',
  POSTGRES_DB: 'DB_NAME',
};

export interface BkliteOptions {
  /** The BK-Lite checkout: docker-compose.dev.yml, server/, web/. */
  root: string;
  env?: NodeJS.ProcessEnv;
}

export function bkliteConfig(opts: BkliteOptions): UserConfig {
  const env = opts.env ?? process.env;
  const get = (key: Key): string => {
    const fallback = FALLBACK_NAMES[key];
    return env[key] || (fallback ? env[fallback] : undefined) || BKLITE_DEFAULTS[key];
  };
  const pgUrl = (db: string): string =>
    `postgres://${encodeURIComponent(get('POSTGRES_USER'))}:${encodeURIComponent(get('POSTGRES_PASSWORD'))}@${get('POSTGRES_HOST')}:${get('POSTGRES_PORT')}/${encodeURIComponent(db)}`;
  const local = (port: Key, path = ''): string => `http://127.0.0.1:${get(port)}${path}`;
  const namespace = get('NATS_NAMESPACE');
  const nats = `nats://127.0.0.1:${get('NATS_PORT')}`;
  const celery = env['BKLITE_CELERY'] === '1';
  // Python output through a pipe is block-buffered: without this, log lines arrive late and in lumps.
  const python = { PYTHONUNBUFFERED: '1' };

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

      // ---------------------------------------------------------------- the application
      'db-init': {
        kind: 'task',
        description: 'migrate, cache table, init commands, the admin user (skipped when base_user has rows and the migrations are unchanged)',
        cwd: 'server',
        command: [
          'uv run python manage.py migrate',
          'uv run python manage.py createcachetable django_cache',
          'uv run python manage.py init_realm_resource',
          'uv run python manage.py init_login_settings',
          'uv run python manage.py create_user admin password --email=admin@bklite.net --is_superuser',
        ].join(' && '),
        env: python,
        dependsOn: { postgres: 'healthy', redis: 'healthy', nats: 'healthy' },
        once: {
          inputs: ['server/**/migrations/*.py'],
          skipIf: { postgres: pgUrl(get('POSTGRES_DB')), query: 'select 1 from base_user limit 1' },
        },
      },
      nats_listener: {
        description: 'serves the NATS RPC the server calls (without it the login page has no domain)',
        cwd: 'server',
        command: 'uv run python manage.py nats_listener',
        env: python,
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
        requires: [{ file: 'server/.env', hint: "create it as BK-Lite's README says (e.g. cp server/.env.example server/.env)" }],
        env: python,
        dependsOn: { postgres: 'healthy', redis: 'healthy', nats: 'healthy', 'db-init': 'completed' },
        healthcheck: { http: local('SERVER_PORT', '/admin/login/'), interval: '1s', retries: 3, startPeriod: '2m' },
        restart: { policy: 'always', backoff: { initial: '500ms', max: '30s' }, maxRestarts: 10, window: '5m' },
        stop: { signal: 'SIGTERM', timeout: '10s' },
      },
      web: {
        cwd: 'web',
        command: 'pnpm dev',
        requires: [{ file: 'web/.env.local', hint: "create it as BK-Lite's README says (e.g. cp web/.env.example web/.env.local)" }],
        dependsOn: { server: 'healthy' },
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
        dependsOn: { redis: 'healthy', postgres: 'healthy', 'db-init': 'completed' },
        restart: { policy: 'always' },
        // uvicorn --reload follows its own edits; these keep the old code until restarted.
        watch: { paths: ['server/**/*.py'] },
      },
    },
    verify: bkliteVerify(local('SERVER_PORT')),
  };
}
