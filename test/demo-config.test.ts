// The BK-Lite configs through the real config loader: the real stack against a fake checkout,
// the demo stack, the repository's root config choosing between them, and findBkliteRoot.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { findBkliteRoot, bkliteRootProblem } from '../src/bklite-root.ts';
import { loadConfig } from '../src/config/load.ts';
import type { ResolvedConfig, ResolvedUnit } from '../src/config/types.ts';

const REPO = join(import.meta.dirname, '..');
const REAL_CONFIG = join(REPO, 'examples', 'bklite', 'supervisor.config.ts');
const DEMO_CONFIG = join(REPO, 'examples', 'bklite-demo', 'supervisor.config.ts');
const ROOT_CONFIG = join(REPO, 'supervisor.config.ts');

const ENV_KEYS = ['BKLITE_ROOT', 'BKLITE_CELERY', 'BKLITE_DEMO_DATA', 'POSTGRES_PORT', 'NATS_PORT', 'SERVER_PORT', 'WEB_PORT', 'DB_PASSWORD', 'POSTGRES_PASSWORD'];
let saved: Record<string, string | undefined>;
let dirs: string[] = [];

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function fakeCheckout(): string {
  const root = tmp('bksup-fake-bklite-');
  writeFileSync(join(root, 'docker-compose.dev.yml'), 'services: {}\n');
  mkdirSync(join(root, 'server', 'apps', 'core', 'migrations'), { recursive: true });
  writeFileSync(join(root, 'server', 'apps', 'core', 'migrations', '0001_initial.py'), '# migration\n');
  mkdirSync(join(root, 'web'));
  return root;
}

async function load(configPath: string, cwd: string): Promise<ResolvedConfig> {
  const r = await loadConfig({ cwd, configPath });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

function probeType(u: ResolvedUnit | undefined): string | undefined {
  const p = u?.healthcheck?.probe;
  return p ? ['http', 'tcp', 'exec', 'log', 'postgres', 'nats', 'redis', 'docker'].find((k) => k in p) : undefined;
}

beforeEach(() => {
  saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
});

afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
  vi.restoreAllMocks();
});

describe('findBkliteRoot', () => {
  it('BKLITE_ROOT wins, resolved against cwd', () => {
    expect(findBkliteRoot('/x/y', { BKLITE_ROOT: '../bk' })).toBe('/x/bk');
    expect(findBkliteRoot('/x/y', { BKLITE_ROOT: '/abs/bk' })).toBe('/abs/bk');
  });

  it('else the nearest directory upwards holding docker-compose.dev.yml', () => {
    const root = fakeCheckout();
    const deep = join(root, 'server', 'apps', 'core');
    expect(findBkliteRoot(deep, {})).toBe(root);
    expect(findBkliteRoot(root, {})).toBe(root);
    expect(findBkliteRoot(tmp('bksup-nothing-'), {})).toBeUndefined();
  });

  it('bkliteRootProblem names what is missing', () => {
    expect(bkliteRootProblem(fakeCheckout())).toBeUndefined();
    const empty = tmp('bksup-empty-');
    expect(bkliteRootProblem(empty)).toBe(`${empty} is not a BK-Lite checkout (missing docker-compose.dev.yml, server, web)`);
  });
});

describe('the real stack: examples/bklite/supervisor.config.ts', () => {
  it('validates against a checkout and has the units, dependencies and probes of the design table', async () => {
    const root = fakeCheckout();
    process.env.BKLITE_ROOT = root;
    const c = await load(REAL_CONFIG, REPO);
    expect(c.root).toBe(root);
    const u = c.units;
    for (const svc of ['postgres', 'redis', 'nats', 'minio', 'falkordb', 'victoria-metrics', 'victoria-logs', 'mlflow']) {
      expect(u[svc]).toMatchObject({ kind: 'compose', service: svc, file: join(root, 'docker-compose.dev.yml') });
    }
    expect(u.postgres!.healthcheck!.probe).toEqual({ postgres: 'postgres://postgres:bklite_dev_pass@127.0.0.1:15432/bklite' });
    expect(u.redis!.healthcheck!.probe).toEqual({ redis: 'redis://127.0.0.1:16380', password: 'bklite_redis_pass' });
    expect(u.nats!.healthcheck!.probe).toEqual({ nats: 'nats://127.0.0.1:14222', jetstream: true });
    expect(u.minio!.healthcheck!.probe).toEqual({ http: 'http://127.0.0.1:19000/minio/health/live' });
    expect(u['victoria-metrics']!.healthcheck!.probe).toEqual({ http: 'http://127.0.0.1:18428/health' });
    expect(u['victoria-logs']!.healthcheck!.probe).toEqual({ http: 'http://127.0.0.1:19428/health' });
    expect(u.falkordb!.healthcheck!.probe).toEqual({ tcp: '127.0.0.1:16479' });

    expect(u['mlflow-db']).toMatchObject({ kind: 'task', postgres: { ensureDatabases: ['mlflow'] }, dependsOn: { postgres: 'healthy' } });
    expect(u.mlflow!.dependsOn).toEqual({ 'mlflow-db': 'completed', postgres: 'healthy', minio: 'healthy' });
    expect(u.mlflow!.healthcheck!.probe).toEqual({ http: 'http://127.0.0.1:15000/health' });

    const dbInit = u['db-init']!;
    expect(dbInit.kind).toBe('task');
    if (dbInit.kind !== 'task') throw new Error('db-init is a task');
    expect(dbInit.cwd).toBe(join(root, 'server'));
    expect(dbInit.command).toMatch(/^uv run python manage\.py migrate && uv run python manage\.py createcachetable django_cache && .* && uv run python manage\.py create_user admin password/);
    expect(dbInit.once).toEqual({
      inputs: ['server/**/migrations/*.py'],
      outputs: [],
      skipIf: { postgres: 'postgres://postgres:bklite_dev_pass@127.0.0.1:15432/bklite', query: "select 1 from system_mgmt_user where username = 'admin' limit 1", timeoutMs: 5000 },
    });
    expect(dbInit.dependsOn).toEqual({ 'install-server': 'completed', postgres: 'healthy', redis: 'healthy', nats: 'healthy' });

    const listener = u.nats_listener!;
    expect(listener).toMatchObject({ kind: 'process', command: 'uv run python manage.py nats_listener', cwd: join(root, 'server') });
    expect(listener.configEnv).toMatchObject({ PYTHONUNBUFFERED: '1' });
    expect(listener.dependsOn).toEqual({ nats: 'healthy', 'db-init': 'completed' });
    expect(listener.healthcheck!.probe).toEqual({
      nats: 'nats://127.0.0.1:14222',
      request: { subject: 'bk_lite.get_login_module_domain_list', payload: { args: [], kwargs: {} }, expect: { success: true } },
    });

    expect(u.server).toMatchObject({ kind: 'process', cwd: join(root, 'server'), command: 'uv run uvicorn asgi:application --host 0.0.0.0 --port 18001 --reload' });
    expect(u.server!.dependsOn).toEqual({ postgres: 'healthy', redis: 'healthy', nats: 'healthy', 'db-init': 'completed' });
    expect(u.server!.healthcheck!.probe).toEqual({ http: 'http://127.0.0.1:18001/admin/login/' });

    expect(u.web).toMatchObject({ kind: 'process', cwd: join(root, 'web'), command: 'pnpm dev --port 3011', dependsOn: { server: 'healthy', 'install-web': 'completed' } });
    expect(u.web!.healthcheck).toMatchObject({ probe: { http: 'http://127.0.0.1:3011/auth/signin' }, intervalMs: 2000, startPeriodMs: 300_000 });

    expect(u['celery-worker']!.enabled).toBe(false);
    expect(u['celery-beat']!.enabled).toBe(false);
    // Python units that do not reload themselves are restarted on edits; uvicorn --reload and next dev are not watched.
    for (const n of ['nats_listener', 'celery-worker', 'celery-beat']) expect(u[n]!.watch, n).toEqual({ paths: ['server/**/*.py'], ignore: [], debounceMs: 300, cascade: false });
    expect(u.server!.watch).toBeUndefined();
    expect(u.web!.watch).toBeUndefined();

    expect(c.verify.map((v) => [v.name, v.method, v.url || v.browser?.url, v.expect])).toEqual([
      ['the login page lists domain.com', 'GET', 'http://127.0.0.1:18001/api/v1/core/api/get_domain_list/', { result: true, data: { contains: 'domain.com' } }],
      ['admin can log in', 'POST', 'http://127.0.0.1:18001/api/v1/core/api/login/', { result: true, 'data.token': { exists: true } }],
      ['the web proxy lists domain.com (NEXTAPI_URL reaches the server)', 'GET', 'http://127.0.0.1:3011/api/proxy/core/api/get_domain_list/', { result: true, data: { contains: 'domain.com' } }],
      ['admin signs in at /auth/signin (headless Chromium)', 'GET', 'http://127.0.0.1:3011/auth/signin', {}],
    ]);
    expect(c.verify[1]!.body).toEqual({ username: 'admin', password: 'password', domain: 'domain.com' });
  });

  it('ports and passwords come from the environment; BKLITE_CELERY=1 enables celery', async () => {
    process.env.BKLITE_ROOT = fakeCheckout();
    process.env.POSTGRES_PORT = '25432';
    process.env.POSTGRES_PASSWORD = 'from-env';
    process.env.DB_PASSWORD = 'ignored'; // server/.env's names are checked against the stack, not read for it
    process.env.NATS_PORT = '24222';
    process.env.SERVER_PORT = '28001';
    process.env.BKLITE_CELERY = '1';
    const c = await load(REAL_CONFIG, REPO);
    expect(c.units.postgres!.healthcheck!.probe).toEqual({ postgres: 'postgres://postgres:from-env@127.0.0.1:25432/bklite' });
    expect(c.units.nats!.healthcheck!.probe).toMatchObject({ nats: 'nats://127.0.0.1:24222' });
    expect(c.units.server).toMatchObject({ command: expect.stringContaining('--port 28001') });
    expect(c.verify[0]!.url).toBe('http://127.0.0.1:28001/api/v1/core/api/get_domain_list/');
    expect(c.units['celery-worker']!.enabled).toBe(true);
    expect(c.units['celery-beat']!.enabled).toBe(true);
  });

  it('without a checkout it fails with what to do', async () => {
    const r = await loadConfig({ cwd: tmp('bksup-nowhere-'), configPath: REAL_CONFIG });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]).toContain('no BK-Lite checkout found: set BKLITE_ROOT=/path/to/bk-lite or run bksup inside the checkout');

    process.env.BKLITE_ROOT = tmp('bksup-not-bklite-');
    const r2 = await loadConfig({ cwd: REPO, configPath: REAL_CONFIG });
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.errors[0]).toMatch(/is not a BK-Lite checkout \(missing docker-compose\.dev\.yml, server, web\) \(from BKLITE_ROOT\)/);
  });
});

describe('the demo stack: examples/bklite-demo/supervisor.config.ts', () => {
  it('has the real stack’s application units with the same dependencies and probe types', async () => {
    process.env.BKLITE_ROOT = fakeCheckout();
    const real = await load(REAL_CONFIG, REPO);
    const demo = await load(DEMO_CONFIG, REPO);
    expect(demo.root).toBe(join(REPO, 'examples', 'bklite-demo'));
    for (const name of ['postgres', 'redis', 'nats', 'mlflow-db', 'mlflow', 'db-init', 'nats_listener', 'server', 'web']) {
      expect(demo.units[name], name).toBeDefined();
      expect(probeType(demo.units[name]), name).toBe(probeType(real.units[name]));
    }
    // The demo has no installs: its stand-ins need no packages.
    const withoutInstalls = (deps: Readonly<Record<string, string>>) => Object.fromEntries(Object.entries(deps).filter(([d]) => !d.startsWith('install-')));
    for (const name of ['db-init', 'nats_listener', 'server', 'web', 'mlflow-db']) {
      expect(demo.units[name]!.dependsOn, name).toEqual(withoutInstalls(real.units[name]!.dependsOn));
    }
    expect(demo.units.nats_listener!.healthcheck!.probe).toEqual(real.units.nats_listener!.healthcheck!.probe);
    const dbInit = demo.units['db-init']!;
    if (dbInit.kind !== 'task') throw new Error('db-init is a task');
    expect(dbInit.once?.inputs).toEqual(['migrations/*.sql']);
    expect(dbInit.once?.skipIf).toMatchObject({ query: 'select 1 from base_user limit 1' });
    // The demo's web stand-in has no proxy and no sign-in page: the server checks only.
    expect(demo.verify).toEqual(real.verify.slice(0, 2));
    // postgres: the postmaster is exec'd (sh → setpriv → postgres) and stopped with SIGINT (fast shutdown).
    expect(demo.units.postgres).toMatchObject({ stop: { signal: 'SIGINT' }, dependsOn: { 'pg-initdb': 'completed' } });
  });

  it('ports and the data directory come from the environment', async () => {
    process.env.POSTGRES_PORT = '25432';
    process.env.NATS_PORT = '24222';
    process.env.SERVER_PORT = '28001';
    process.env.BKLITE_DEMO_DATA = '/tmp/somewhere/data';
    const demo = await load(DEMO_CONFIG, REPO);
    expect(demo.units.postgres!.healthcheck!.probe).toEqual({ postgres: 'postgres://postgres:bklite_dev_pass@127.0.0.1:25432/bklite' });
    expect(demo.units.nats).toMatchObject({ command: expect.arrayContaining(['24222', '/tmp/somewhere/data/nats']) });
    expect(demo.units['pg-initdb']!.configEnv).toMatchObject({ PGDATA: '/tmp/somewhere/data/pg' });
    expect(demo.verify[1]!.url).toBe('http://127.0.0.1:28001/api/v1/core/api/login/');
  });
});

describe('the repository root supervisor.config.ts', () => {
  it('without a BK-Lite checkout runs the demo, and says so first', async () => {
    const writes: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    const c = await load(ROOT_CONFIG, REPO);
    expect(c.root).toBe(REPO);
    expect(Object.keys(c.units)).toContain('pg-initdb');
    expect(writes.join('')).toMatch(/^bksup: no BK-Lite checkout found \(set BKLITE_ROOT or run inside it\): running the demo stack from examples\/bklite-demo/);
  });

  it('with BKLITE_ROOT runs the real stack', async () => {
    const root = fakeCheckout();
    process.env.BKLITE_ROOT = root;
    const writes: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    const c = await load(ROOT_CONFIG, REPO);
    expect(c.root).toBe(root);
    expect(c.units.postgres!.kind).toBe('compose');
    expect(writes.join('')).toContain(`bksup: BK-Lite checkout ${root}: running the real stack`);
  });
});
