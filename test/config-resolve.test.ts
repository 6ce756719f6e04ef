// User config → ResolvedConfig: defaults, units of measure, paths, env precedence, order.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { resolveConfig } from '../src/config/validate.ts';
import type { ResolvedConfig, ResolvedTaskUnit } from '../src/config/types.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bksup-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function resolveOk(user: unknown, env: NodeJS.ProcessEnv = {}): ResolvedConfig {
  const r = resolveConfig(user, { file: join(dir, 'supervisor.config.ts'), cwd: dir, env });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

function resolveErrors(user: unknown): string[] {
  const r = resolveConfig(user, { file: join(dir, 'supervisor.config.ts'), cwd: dir, env: {} });
  if (r.ok) throw new Error('expected errors');
  return r.errors;
}

describe('defaults', () => {
  test('a minimal config gets every default', () => {
    const c = resolveOk({ units: { web: { command: 'pnpm dev' } } });
    expect(c.file).toBe(join(dir, 'supervisor.config.ts'));
    expect(c.root).toBe(dir);
    expect(c.stateDir).toBe(join(dir, '.supervisor'));
    expect(c.logs).toEqual({ dir: join(dir, 'logs'), maxSizeBytes: 10 * 1024 * 1024, keep: 5, ringSize: 10_000, fileMode: 0o600 });
    expect(c.control).toEqual({ host: '127.0.0.1', port: 0, allowRemote: false });
    expect(c.order).toEqual(['web']);
    expect(c.verify).toEqual([]);
    expect(c.units.web).toEqual({
      name: 'web',
      onDependencyFailure: 'wait',
      requires: [],
      kind: 'process',
      enabled: true,
      description: undefined,
      command: 'pnpm dev',
      cwd: dir,
      tty: false,
      env: {},
      configEnv: {},
      dependsOn: {},
      healthcheck: undefined,
      restart: { policy: 'on-failure', initialMs: 100, maxMs: 30_000, factor: 2, jitter: 0.1, maxRestarts: 10, windowMs: 300_000 },
      stop: { signal: 'SIGTERM', timeoutMs: 10_000 },
    });
  });

  test('tasks default to restart policy never; compose units get file and project from the top', () => {
    const c = resolveOk({
      compose: { file: 'dc.yml' },
      units: {
        t: { kind: 'task', command: 'echo' },
        pg: { kind: 'compose', service: 'postgres' },
        other: { kind: 'compose', service: 'x', file: 'other/dc.yml', project: 'p2' },
      },
    });
    expect(c.units.t?.restart.policy).toBe('never');
    expect(c.units.pg?.restart.policy).toBe('on-failure');
    expect(c.units.pg).toMatchObject({ kind: 'compose', service: 'postgres', file: join(dir, 'dc.yml') });
    expect(c.units.other).toMatchObject({ file: join(dir, 'other/dc.yml'), project: 'p2' });
  });

  test('compose project defaults to the root directory name, as compose would spell it', async () => {
    const root = join(dir, 'BK-Lite.dev');
    await mkdir(root);
    const c = resolveOk({ root: 'BK-Lite.dev', units: { pg: { kind: 'compose', service: 'postgres' } } });
    expect(c.units.pg).toMatchObject({ project: 'bk-litedev', file: join(root, 'docker-compose.dev.yml') });
  });

  test('healthcheck timing defaults, and given values in ms; the probe keeps only probe fields', () => {
    const c = resolveOk({
      units: {
        a: { command: 'x', healthcheck: { http: 'http://127.0.0.1:1/', expectStatus: [200, 302] } },
        b: { command: 'x', healthcheck: { tcp: 5432, interval: '250ms', timeout: '2s', retries: 5, startPeriod: '1m' } },
        c: { command: 'x', cwd: 'sub', healthcheck: { exec: ['true'], cwd: 'probe-dir' } },
      },
    });
    expect(c.units.a?.healthcheck).toEqual({
      probe: { http: 'http://127.0.0.1:1/', expectStatus: [200, 302] },
      intervalMs: 1000,
      timeoutMs: 5000,
      retries: 3,
      startPeriodMs: 0,
    });
    expect(c.units.b?.healthcheck).toEqual({ probe: { tcp: 5432 }, intervalMs: 250, timeoutMs: 2000, retries: 5, startPeriodMs: 60_000 });
    expect(c.units.c?.healthcheck?.probe).toEqual({ exec: ['true'], cwd: join(dir, 'probe-dir') });
    expect(c.units.c).toMatchObject({ cwd: join(dir, 'sub') });
  });

  test('restart, stop, logs and control values are converted', () => {
    const c = resolveOk({
      logs: { dir: '/var/tmp/bk-logs', maxSize: '512KB', keep: 2, ringSize: 100, fileMode: 0o640 },
      control: { host: '0.0.0.0', port: 4000, allowRemote: true },
      units: {
        a: {
          command: ['node', 'a.js'],
          restart: { policy: 'always', backoff: { initial: '1s', max: '1m', factor: 3, jitter: 0 }, maxRestarts: 0, window: '1h' },
          stop: { signal: 'SIGINT', timeout: 500 },
        },
      },
    });
    expect(c.logs).toEqual({ dir: '/var/tmp/bk-logs', maxSizeBytes: 512 * 1024, keep: 2, ringSize: 100, fileMode: 0o640 });
    expect(c.control).toEqual({ host: '0.0.0.0', port: 4000, allowRemote: true });
    expect(c.units.a?.restart).toEqual({ policy: 'always', initialMs: 1000, maxMs: 60_000, factor: 3, jitter: 0, maxRestarts: 0, windowMs: 3_600_000 });
    expect(c.units.a?.stop).toEqual({ signal: 'SIGINT', timeoutMs: 500 });
  });

  test('once: true is short for once: {}; skipIf gets a timeout', () => {
    const c = resolveOk({
      units: {
        a: { kind: 'task', command: 'x', once: true },
        b: { kind: 'task', command: 'x', once: { inputs: ['server/**/*.py'], skipIf: { postgres: 'postgres://h/db', query: 'select 1' } } },
        c: { kind: 'task', command: 'x', once: { skipIf: { tcp: 80, timeout: '1s' } } },
        d: { kind: 'task', command: 'x', once: false },
        e: { kind: 'task', postgres: { url: 'postgres://h/db' } },
      },
    });
    const task = (n: string) => c.units[n] as ResolvedTaskUnit;
    expect(task('a').once).toEqual({ inputs: [], outputs: [], skipIf: undefined });
    expect(task('b').once).toEqual({ inputs: ['server/**/*.py'], outputs: [], skipIf: { postgres: 'postgres://h/db', query: 'select 1', timeoutMs: 5000 } });
    expect(task('c').once?.skipIf).toEqual({ tcp: 80, timeoutMs: 1000 });
    expect(task('d').once).toBeUndefined();
    expect(task('e')).toMatchObject({ command: undefined, postgres: { url: 'postgres://h/db', ensureDatabases: [] }, once: undefined });
  });

  test('verify checks: GET by default, POST with a body, 10s timeout', () => {
    const c = resolveOk({
      units: { a: { command: 'x' } },
      verify: [
        { name: 'list', url: 'http://127.0.0.1:1/list' },
        { name: 'login', url: 'http://127.0.0.1:1/login', body: { u: 'admin' }, expect: { result: true }, expectStatus: 200, timeout: '3s' },
        { name: 'put', method: 'put', url: 'http://127.0.0.1:1/x', headers: { 'X-A': 'b' } },
      ],
    });
    expect(c.verify).toEqual([
      { name: 'list', method: 'GET', url: 'http://127.0.0.1:1/list', headers: {}, body: undefined, expectStatus: undefined, expect: {}, timeoutMs: 10_000 },
      { name: 'login', method: 'POST', url: 'http://127.0.0.1:1/login', headers: {}, body: { u: 'admin' }, expectStatus: 200, expect: { result: true }, timeoutMs: 3000 },
      { name: 'put', method: 'PUT', url: 'http://127.0.0.1:1/x', headers: { 'X-A': 'b' }, body: undefined, expectStatus: undefined, expect: {}, timeoutMs: 10_000 },
    ]);
  });

  test('the resolved config is deeply frozen', () => {
    const c = resolveOk({ units: { a: { command: ['x'], env: { A: 1 }, healthcheck: { tcp: 1 } } } });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.units)).toBe(true);
    expect(Object.isFrozen(c.units.a?.env)).toBe(true);
    expect(Object.isFrozen(c.units.a?.healthcheck?.probe)).toBe(true);
    expect(Object.isFrozen(c.order)).toBe(true);
    expect(() => {
      (c.units.a as { enabled: boolean }).enabled = false;
    }).toThrow(TypeError);
  });
});

describe('paths', () => {
  test('root is relative to the config file; cwd, logs, envFile, compose.file relative to root', async () => {
    await mkdir(join(dir, 'conf'));
    await mkdir(join(dir, 'stack'));
    await writeFile(join(dir, 'stack', 'units.env'), 'FROM_FILE=1\n');
    const r = resolveConfig(
      { root: '../stack', logs: { dir: 'out/logs' }, compose: { file: 'compose.yml' }, units: { a: { command: 'x', cwd: 'server', envFile: 'units.env' }, c: { kind: 'compose', service: 's' } } },
      { file: join(dir, 'conf', 'supervisor.config.ts'), cwd: '/', env: {} },
    );
    if (!r.ok) throw new Error(r.errors.join('\n'));
    const root = join(dir, 'stack');
    expect(r.config.root).toBe(root);
    expect(r.config.stateDir).toBe(join(root, '.supervisor'));
    expect(r.config.logs.dir).toBe(join(root, 'out/logs'));
    expect(r.config.units.a).toMatchObject({ cwd: join(root, 'server'), configEnv: { FROM_FILE: '1' } });
    expect(r.config.units.c).toMatchObject({ file: join(root, 'compose.yml') });
  });

  test('an inline config is rooted at cwd', () => {
    const r = resolveConfig({ units: { a: { command: 'x' } } }, { file: '<inline>', cwd: dir, env: {} });
    expect(r.ok && r.config.root).toBe(dir);
    expect(r.ok && r.config.file).toBe('<inline>');
  });
});

describe('dependencies and order', () => {
  test('array form: completed for tasks, healthy for everything else', () => {
    const c = resolveOk({
      units: {
        web: { command: 'x', dependsOn: ['server'] },
        server: { command: 'x', dependsOn: ['init', 'pg', 'plain'] },
        init: { kind: 'task', command: 'x', dependsOn: ['pg'] },
        pg: { kind: 'compose', service: 'postgres' },
        plain: { command: 'x' },
      },
    });
    expect(c.units.server?.dependsOn).toEqual({ init: 'completed', pg: 'healthy', plain: 'healthy' });
    expect(c.units.web?.dependsOn).toEqual({ server: 'healthy' });
    expect(c.order).toEqual(['pg', 'init', 'plain', 'server', 'web']);
  });

  test('order keeps config order among independent units', () => {
    const c = resolveOk({ units: { c: { command: 'x' }, a: { command: 'x', dependsOn: { c: 'started' } }, b: { command: 'x' } } });
    expect(c.order).toEqual(['c', 'a', 'b']);
  });

  test('disabled units stay in the config; dependencies on them remain (and count as satisfied at run time)', () => {
    const c = resolveOk({ units: { a: { command: 'x', enabled: false }, b: { command: 'x', dependsOn: ['a'] } } });
    expect(c.units.a?.enabled).toBe(false);
    expect(c.units.b?.dependsOn).toEqual({ a: 'healthy' });
    expect(c.order).toEqual(['a', 'b']);
  });
});

describe('env', () => {
  test('precedence: process env < config.env < config envFile < unit.env < unit envFile', async () => {
    await writeFile(join(dir, '.env'), 'FROM_TOP_FILE=top-file\nA=top-file\nB=top-file\n');
    await writeFile(join(dir, 'unit.env'), 'export A=unit-file\n');
    const c = resolveOk(
      {
        env: { A: 'config', B: 'config', C: 'config', N: 42, T: true },
        units: {
          a: { command: 'x', env: { A: 'unit', B: 'unit', D: 'unit' }, envFile: 'unit.env' },
          b: { command: 'x' },
        },
      },
      { A: 'process', C: 'process', E: 'process', UNSET: undefined },
    );
    expect(c.units.a?.env).toEqual({
      A: 'unit-file',
      B: 'unit',
      C: 'config',
      D: 'unit',
      E: 'process',
      N: '42',
      T: 'true',
      FROM_TOP_FILE: 'top-file',
    });
    expect(c.units.a?.configEnv).toEqual({ A: 'unit-file', B: 'unit', C: 'config', D: 'unit', N: '42', T: 'true', FROM_TOP_FILE: 'top-file' });
    // Precedence of the top file over config.env shows on a unit without its own env.
    expect(c.units.b?.env).toMatchObject({ A: 'top-file', B: 'top-file', C: 'config', E: 'process' });
    expect(c.units.b?.configEnv).not.toHaveProperty('E');
  });

  test('a missing top-level .env is fine; a missing unit envFile is an error', () => {
    expect(resolveOk({ units: { a: { command: 'x' } } }).units.a?.configEnv).toEqual({});
    expect(resolveOk({ envFile: '.env', units: { a: { command: 'x' } } }).units.a?.configEnv).toEqual({});
    expect(resolveErrors({ units: { a: { command: 'x', envFile: 'server/.env.local' } } })).toEqual([
      'supervisor.config.ts: units.a.envFile: cannot read env file server/.env.local: file not found (create it, or fix or remove units.a.envFile)',
    ]);
    expect(resolveErrors({ envFile: 'dev.env', units: { a: { command: 'x' } } })).toEqual([
      'supervisor.config.ts: envFile: cannot read env file dev.env: file not found (create it, or fix or remove envFile)',
    ]);
  });

  test('a malformed env file names file and line, not values', async () => {
    await writeFile(join(dir, '.env'), 'GOOD=1\nPASSWORD hunter2\n');
    const errors = resolveErrors({ units: { a: { command: 'x' } } });
    expect(errors).toEqual(['supervisor.config.ts: envFile: .env line 2: expected KEY=VALUE']);
  });
});

describe('the BK-Lite example config', () => {
  test('resolves', async () => {
    const { default: user } = await import('./fixtures/config/bk-lite.config.ts');
    const r = resolveConfig(user, { file: join(dir, 'supervisor.config.ts'), cwd: dir, env: {} });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    const c = r.config;
    expect(c.root).toBe(join(dir, 'stack'));
    expect(c.order).toEqual(['postgres', 'redis', 'nats', 'minio', 'falkordb', 'mlflow-db', 'mlflow', 'db-init', 'nats_listener', 'server', 'web', 'docs']);
    expect(c.units['db-init']?.dependsOn).toEqual({ postgres: 'healthy', redis: 'healthy', nats: 'healthy' });
    expect(c.units.nats_listener?.configEnv).toEqual({ NATS_NAMESPACE: 'bk_lite', DEBUG: 'true', WORKERS: '2', PYTHONUNBUFFERED: '1' });
    expect(c.units.postgres).toMatchObject({ project: 'bk-lite', file: join(dir, 'stack', 'docker-compose.dev.yml') });
    expect(c.units.mlflow?.healthcheck?.startPeriodMs).toBe(60_000);
    expect(c.units.docs?.enabled).toBe(false);
    expect(c.verify.map((v) => v.method)).toEqual(['GET', 'POST']);
  });
});
