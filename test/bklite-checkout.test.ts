// The real BK-Lite stack against a BK-Lite-shaped checkout written by the test (nothing copied
// from BK-Lite): what `bksup check` shows, the .env files it creates and cross-checks, the
// overrides, an upstream checkout, the admin skipIf on a real PostgreSQL, and missing uv/pnpm.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bkliteConfig, BKLITE_INIT_STEPS } from '../examples/bklite/stack.ts';
import type { ResolvedConfig } from '../src/config/types.ts';
import { resolveConfig } from '../src/config/validate.ts';
import { checkPrograms } from '../src/preflight.ts';
import { checkEnvFiles } from '../src/preflight-env.ts';
import { runCli } from './helpers/daemon.ts';
import { startPostgres, type PostgresServer } from './helpers/servers.ts';
import { removeDir, startStack, type Stack } from './helpers/stack.ts';

const REPO = join(import.meta.dirname, '..');
const REAL_CONFIG = join(REPO, 'examples', 'bklite', 'supervisor.config.ts');
const ROOT_CONFIG = join(REPO, 'supervisor.config.ts');

const dirs: string[] = [];
const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) removeDir(d);
});

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function put(root: string, path: string, text: string): void {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), text);
}

/** The huangpu-dev layout: dev.sh, docker-compose.dev.yml, a Django server/ and a pnpm web/, before `./dev.sh install`. */
function fakeCheckout(opts: { upstream?: boolean } = {}): string {
  const root = tmp('bksup-bklite-');
  if (!opts.upstream) {
    put(root, 'dev.sh', '#!/bin/sh\n');
    const pulled = ['postgres', 'redis', 'nats', 'minio', 'falkordb', 'victoria-metrics', 'victoria-logs'];
    const services = pulled.map((svc) => `  ${svc}:\n    image: bksuptest-absent/${svc}:1\n`).join('');
    put(root, 'mlflow/Dockerfile', 'FROM scratch\n');
    put(root, 'docker-compose.dev.yml', `services:\n${services}  mlflow:\n    build: ./mlflow\n    image: bksuptest-absent/mlflow:1\n`);
  }
  put(root, 'server/manage.py', '# django\n');
  put(root, 'server/pyproject.toml', '[project]\nname = "server"\n');
  put(root, 'server/uv.lock', 'version = 1\n');
  put(root, 'server/apps/core/migrations/0001_initial.py', '# migration\n');
  put(root, 'server/envs/.env.example', 'DEBUG=False\nSECRET_KEY=template-key\n\nDB_NAME=\nDB_PORT=\n\nNATS_SERVERS=\nNATS_NAMESPACE=\nOTHER_SETTING=kept\n');
  put(root, 'web/package.json', '{ "name": "web", "scripts": { "dev": "next dev --port=3000" } }\n');
  put(root, 'web/pnpm-lock.yaml', "lockfileVersion: '9.0'\n");
  put(root, 'web/.env.example', 'NEXTAUTH_URL="http://your-nextauth-url"\nNEXTAPI_URL="http://user-manager"\n');
  return root;
}

function resolved(root: string, env: NodeJS.ProcessEnv = {}): ResolvedConfig {
  const r = resolveConfig(bkliteConfig({ root, env }), { file: join(root, 'supervisor.config.ts'), cwd: root, env: { PATH: process.env.PATH, ...env } });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

describe('bksup check on a BK-Lite checkout', () => {
  it('lists the install units, all 13 init commands in dev.sh order and the web-path verify; creates nothing', async () => {
    const root = fakeCheckout();
    const { output } = await runCli(tmp('bksup-cwd-'), ['-c', REAL_CONFIG, 'check'], { BKLITE_ROOT: root });
    expect(output).toContain('install-server [once]: uv sync --all-groups --all-extras (in server)');
    expect(output).toContain('install-web [once]: pnpm install (in web)');
    let at = 0;
    for (const step of BKLITE_INIT_STEPS) {
      const i = output.indexOf(`manage.py ${step.command}`, at);
      expect(i, `${step.command} after the previous step`).toBeGreaterThan(at);
      at = i;
    }
    expect(output).toMatch(/init-model \[once, optional\]: uv run python manage\.py model_init/);
    expect(output).toContain('GET http://127.0.0.1:3011/api/proxy/core/api/get_domain_list/');
    expect(output).toContain('admin signs in at /auth/signin (headless Chromium): browser http://127.0.0.1:3011/auth/signin');
    // Preflight says what `up` will do about the fresh clone.
    expect(output).toContain('install-server: server/.venv is missing: `up` runs install-server (uv sync --all-groups --all-extras) first');
    expect(output).toContain('install-web: web/node_modules is missing');
    expect(output).toMatch(/server\/\.env is missing: `up` will create it with the stack's values \(DEBUG, DB_HOST, DB_PORT/);
    expect(output).toContain('web/.env.local is missing: `up` will create it');
    // Images: the seven pulled ones are named with the command for an offline machine; mlflow is built.
    expect(output).toContain('images not in the local store: bksuptest-absent/postgres:1 (postgres), bksuptest-absent/redis:1 (redis)');
    expect(output).toMatch(new RegExp(`run docker(-compose| compose) -f ${root}/docker-compose\\.dev\\.yml pull postgres redis nats minio falkordb victoria-metrics victoria-logs while online`));
    expect(output).not.toContain('(mlflow)');
    expect(output).not.toContain('server/.env.example');
    expect(output).not.toContain('bklite_dev_pass');
    expect(existsSync(join(root, 'server', '.env'))).toBe(false);
    expect(existsSync(join(root, 'web', '.env.local'))).toBe(false);
  });
});

describe('.env files', () => {
  it('creates missing ones from the templates with the stack values, says so, and never overwrites', () => {
    const root = fakeCheckout();
    const first = checkEnvFiles(resolved(root), { write: true });
    expect(first.problems).toEqual([]);
    expect(first.notes).toEqual([
      expect.stringMatching(/^created server\/\.env from server\/envs\/\.env\.example with the stack's values \(DEBUG, DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, REDIS_CACHE_URL, NATS_SERVERS, NATS_NAMESPACE/),
      expect.stringMatching(/^created web\/\.env\.local from web\/\.env\.example with the stack's values \(NEXTAUTH_URL, NEXTAUTH_SECRET, NEXTAPI_URL\)/),
    ]);
    expect(first.notes.join('\n')).not.toContain('bklite_dev_pass');
    const server = readFileSync(join(root, 'server', '.env'), 'utf8');
    // The template's lines in order, its keys filled, its other settings kept.
    expect(server).toMatch(/^DEBUG=True\nSECRET_KEY=template-key\n\nDB_NAME=bklite\nDB_PORT=15432\n\nNATS_SERVERS=nats:\/\/127\.0\.0\.1:14222\nNATS_NAMESPACE=bk_lite\nOTHER_SETTING=kept\n/);
    expect(server).toContain('DB_PASSWORD=bklite_dev_pass\n');
    expect(server).toContain('REDIS_CACHE_URL=redis://:bklite_redis_pass@127.0.0.1:16380/0\n');
    expect(server).toContain('MINIO_ENDPOINT=127.0.0.1:19000\n');
    expect(statSync(join(root, 'server', '.env')).mode & 0o777).toBe(0o600);
    const web = readFileSync(join(root, 'web', '.env.local'), 'utf8');
    expect(web).toContain('NEXTAPI_URL=http://127.0.0.1:18001\n');
    expect(web).toContain('NEXTAUTH_URL=http://127.0.0.1:3011\n');
    expect(web).toMatch(/NEXTAUTH_SECRET=[A-Za-z0-9_-]{32}\n/);

    // Present and right: nothing to say, nothing rewritten.
    writeFileSync(join(root, 'server', '.env'), server.replace('DEBUG=True', 'DEBUG=True # mine'));
    const again = checkEnvFiles(resolved(root), { write: true });
    expect(again).toEqual({ problems: [], notes: [] });
    expect(readFileSync(join(root, 'server', '.env'), 'utf8')).toContain('# mine');
  });

  it('a present file that does not point at the stack: one problem per key, naming file, key, found and expected, no secret', () => {
    const root = fakeCheckout();
    put(root, 'server/.env', ['DB_HOST=localhost', 'DB_PORT=5432', 'DB_NAME=bklite', 'DB_USER=postgres', 'DB_PASSWORD=someone-elses-secret', 'REDIS_CACHE_URL=redis://:bklite_redis_pass@localhost:6379/0', 'NATS_SERVERS=', 'NATS_NAMESPACE=bk_lite', ''].join('\n'));
    put(root, 'web/.env.local', 'NEXTAPI_URL="http://127.0.0.1:8001"\n');
    const { problems } = checkEnvFiles(resolved(root), { write: true });
    const text = problems.map((p) => p.message);
    expect(text).toEqual([
      'server/.env: DB_PORT is "5432", expected "15432" (the stack\'s value; fix the file or delete it to have it created)',
      'server/.env: DB_PASSWORD is (a secret, not shown), expected (a secret, not shown) (the stack\'s value; fix the file or delete it to have it created)',
      'server/.env: REDIS_CACHE_URL is "redis://:***@localhost:6379/0", expected "redis://:***@127.0.0.1:16380/0" (the stack\'s value; fix the file or delete it to have it created)',
      'server/.env: NATS_SERVERS is blank, expected "nats://127.0.0.1:14222" (the stack\'s value; fix the file or delete it to have it created)',
      'web/.env.local: NEXTAPI_URL is "http://127.0.0.1:8001", expected "http://127.0.0.1:18001" (the stack\'s value; fix the file or delete it to have it created)',
    ]);
    expect(text.join('\n')).not.toMatch(/someone-elses-secret|bklite_dev_pass|bklite_redis_pass/);
    // localhost is 127.0.0.1 (DB_HOST passed).
    expect(readFileSync(join(root, 'server', '.env'), 'utf8')).toContain('DB_HOST=localhost');
  });
});

describe('overrides change everything that uses the value', () => {
  it('WEB_PORT, SERVER_PORT and POSTGRES_PORT reach commands, probes, .env values and verify', () => {
    const root = fakeCheckout();
    const c = resolved(root, { WEB_PORT: '4123', SERVER_PORT: '28001', POSTGRES_PORT: '25432' });
    const web = c.units.web!;
    expect(web.kind === 'process' && web.command).toBe('pnpm dev --port 4123');
    expect(web.healthcheck!.probe).toEqual({ http: 'http://127.0.0.1:4123/auth/signin' });
    const webEnv = web.requires.find((r) => r.file.endsWith('web/.env.local'))!;
    expect(webEnv.create).toMatchObject({ NEXTAUTH_URL: 'http://127.0.0.1:4123', NEXTAPI_URL: 'http://127.0.0.1:28001' });
    expect(webEnv.expect).toEqual({ NEXTAPI_URL: 'http://127.0.0.1:28001' });
    const server = c.units.server!;
    expect(server.kind === 'process' && server.command).toContain('--port 28001');
    expect(server.requires[0]!.expect).toMatchObject({ DB_PORT: '25432' });
    expect(c.units.postgres!.healthcheck!.probe).toMatchObject({ postgres: expect.stringContaining('@127.0.0.1:25432/') });
    expect(c.verify.map((v) => v.url || v.browser?.url)).toEqual([
      'http://127.0.0.1:28001/api/v1/core/api/get_domain_list/',
      'http://127.0.0.1:28001/api/v1/core/api/login/',
      'http://127.0.0.1:4123/api/proxy/core/api/get_domain_list/',
      'http://127.0.0.1:4123/auth/signin',
    ]);
  });

  it('server/.env DB_* are not read for the stack (they are checked against it)', () => {
    const root = fakeCheckout();
    put(root, 'server/.env', 'DB_PORT=5432\n');
    expect(resolved(root).units.postgres!.healthcheck!.probe).toMatchObject({ postgres: expect.stringContaining(':15432/') });
  });
});

describe('bksup run inside the checkout (on PATH, no --config)', () => {
  it("uses bk-supervisor's BK-Lite config for the checkout around it, says so, and the client commands find the same place", async () => {
    const root = fakeCheckout();
    const inside = join(root, 'server', 'apps');
    const { code, output } = await runCli(inside, ['check', '--no-preflight'], { BKLITE_ROOT: '' });
    expect(code, output).toBe(0);
    expect(output).toContain(`BK-Lite checkout ${root}: running the real stack`);
    expect(output).toContain(`config ${ROOT_CONFIG}: `);
    expect(output).toContain('server: uv run uvicorn asgi:application');
    const status = await runCli(inside, ['status'], { BKLITE_ROOT: '' });
    expect(status.code).toBe(1);
    expect(status.output).toContain(`no supervisor is running in ${root} (looked for .supervisor/control.json there: the root of ${ROOT_CONFIG} (bk-supervisor's BK-Lite config: none in the directory))`);
  });
});

describe('other checkouts', () => {
  it('an upstream checkout (no dev.sh, no docker-compose.dev.yml) is named with what is missing, not run as the demo', async () => {
    const root = fakeCheckout({ upstream: true });
    const inside = join(root, 'server', 'apps');
    for (const configPath of [ROOT_CONFIG, REAL_CONFIG]) {
      const { code, output } = await runCli(inside, ['-c', configPath, 'check', '--no-preflight'], { BKLITE_ROOT: '' });
      expect(code, output).toBe(2);
      expect(output).toContain(`${root} is a BK-Lite checkout without docker-compose.dev.yml and dev.sh (the upstream TencentBlueKing/bk-lite layout)`);
      expect(output).not.toContain('demo');
    }
  });

  it('uv and pnpm missing: said once each, with every unit that needs them and dev.sh\'s install command', () => {
    const root = fakeCheckout();
    const r = resolveConfig(bkliteConfig({ root, env: {} }), { file: join(root, 'x.ts'), cwd: root, env: { PATH: tmp('bksup-empty-path-') } });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    const { problems } = checkPrograms(r.config, tmp('bksup-home-'));
    const uv = problems.filter((p) => p.message.includes('"uv"'));
    const pnpm = problems.filter((p) => p.message.includes('"pnpm"'));
    expect(uv).toHaveLength(1);
    expect(pnpm).toHaveLength(1);
    expect(uv[0]!.message).toMatch(/needed by install-server, db-init, init-model, .*nats_listener, server\): install it: curl -LsSf https:\/\/astral\.sh\/uv\/install\.sh \| sh$/);
    expect(pnpm[0]!.message).toMatch(/needed by install-web, web\): install it: npm install -g pnpm$/);
  });
});

describe('db-init skipIf', () => {
  let pg: PostgresServer | undefined;
  afterAll(async () => {
    await pg?.stop();
  });

  it('skips only when system_mgmt_user has admin (base_user rows from a login do not count)', async () => {
    pg = await startPostgres();
    const root = fakeCheckout();
    const dbInit = resolved(root).units['db-init']!;
    if (dbInit.kind !== 'task' || !dbInit.once?.skipIf || !('query' in dbInit.once.skipIf)) throw new Error('db-init has a postgres skipIf');
    const query = dbInit.once.skipIf.query!;
    await pg.query('create table system_mgmt_user (id serial primary key, username text not null)');
    await pg.query('create table base_user (id serial primary key)');
    await pg.query('insert into base_user default values');
    const dir = tmp('bksup-skipif-');
    const runs = join(dir, 'runs.txt');
    const user = { units: { 'db-init': { kind: 'task' as const, command: `echo ran >> ${runs}`, once: { skipIf: { postgres: pg.url, query } } } } };
    const run = async (expected: 'completed' | 'skipped'): Promise<void> => {
      const s = await startStack(user, { dir });
      stacks.push(s);
      await s.waitState('db-init', expected);
      await s.stop();
    };
    await run('completed');
    await run('completed'); // fingerprint unchanged, but no admin: runs again
    await pg.query("insert into system_mgmt_user (username) values ('admin')");
    await pg.query('delete from base_user');
    await run('skipped');
    expect(readFileSync(runs, 'utf8')).toBe('ran\nran\n');
  });
});
