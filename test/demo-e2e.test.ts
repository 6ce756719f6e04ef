// The demo stack end to end under the real CLI (`node bin/bksup.js up`), in a temp directory with
// its own data and free ports, so it never meets a user's running demo:
//   up → every unit healthy, verify passes both seed checks
//   the seed failure under the supervisor: nats_listener stopped → no domain; started → back
//   kill -9 of nats_listener → restarted, the domain list answers again
//   down → no process of the stack survives (every pid seen during the run, with its start time)
//   a second up skips db-init; after the database is dropped, db-init runs again

import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.ts';
import type { ResolvedVerifyCheck } from '../src/config/types.ts';
import { isAlive, listProcesses, readStat, treeMembers } from '../src/util/proc.ts';
import { runVerify, type VerifyReport } from '../src/verify.ts';
import { controlFile, runCli, startCli, type RunningCli } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = join(import.meta.dirname, '..');
const PROCESS_UNITS = ['postgres', 'redis', 'nats', 'mlflow', 'nats_listener', 'server', 'web'];
const TASK_UNITS = ['pg-initdb', 'mlflow-db', 'db-init'];

interface UnitRow {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
  reason: string | null;
}

let dir: string;
let ports: Record<'POSTGRES_PORT' | 'REDIS_PORT' | 'NATS_PORT' | 'SERVER_PORT' | 'WEB_PORT' | 'MLFLOW_PORT', number>;
let verifyChecks: readonly ResolvedVerifyCheck[];
let daemon: RunningCli | undefined;
/** Every process of the stack seen during the runs: pid → start time (tells a reused pid apart). */
const seen = new Map<number, number>();
let sampler: NodeJS.Timeout | undefined;

async function unitRows(): Promise<UnitRow[]> {
  const c = controlFile(dir);
  if (!c) throw new Error('no daemon (control.json missing)');
  const res = await fetch(`http://127.0.0.1:${c.port}/api/units`, { headers: { authorization: `Bearer ${c.token}` } });
  return (await res.json()) as UnitRow[];
}

async function row(name: string): Promise<UnitRow> {
  const r = (await unitRows()).find((u) => u.name === name);
  if (!r) throw new Error(`no unit ${name}`);
  return r;
}

/** Adds every live member of every unit's process tree to `seen`. */
async function sample(): Promise<void> {
  const rows = await unitRows().catch(() => []);
  const all = listProcesses();
  for (const r of rows) {
    if (!r.pid) continue;
    for (const p of treeMembers(r.pid, all)) seen.set(p.pid, p.startTime);
  }
}

function describeRows(rows: UnitRow[]): string {
  return rows.map((r) => `${r.name}=${r.state}${r.reason ? ` (${r.reason})` : ''}`).join(', ');
}

/** Waits for db-init to settle and checks it settled as `dbInit`, then for every other unit to be up. */
async function waitStackUp(dbInit: 'completed' | 'skipped'): Promise<UnitRow[]> {
  let last: UnitRow[] = [];
  const state = (n: string): string | undefined => last.find((r) => r.name === n)?.state;
  const poll = async (cond: () => boolean, what: string, timeout: number): Promise<void> => {
    try {
      await waitFor(
        async () => {
          last = await unitRows().catch(() => last);
          const failed = last.find((r) => r.state === 'failed');
          if (failed) throw new Error(`${failed.name} failed: ${failed.reason}`);
          return cond();
        },
        { timeout, interval: 200, message: what },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nunits: ${describeRows(last)}\ndaemon output (tail):\n${daemon?.output().slice(-3000)}`);
    }
  };
  await poll(() => ['completed', 'skipped'].includes(state('db-init') ?? ''), 'db-init to complete or be skipped', 120_000);
  const dbInitRow = last.find((r) => r.name === 'db-init')!;
  expect(`${dbInitRow.state}: ${dbInitRow.reason ?? ''}`).toMatch(new RegExp(`^${dbInit}:`));
  await poll(
    () => PROCESS_UNITS.every((n) => state(n) === 'healthy') && ['pg-initdb', 'mlflow-db'].every((n) => state(n) === 'completed'),
    'every process unit healthy',
    120_000,
  );
  return last;
}

async function up(): Promise<void> {
  expect(controlFile(dir)).toBeUndefined();
  daemon = startCli(dir, ['up'], { WEB_COMPILE_MS: '200' });
  await waitFor(() => controlFile(dir), { timeout: 60_000, message: `control.json (output: ${daemon.output()})` });
  sampler = setInterval(() => void sample(), 200);
}

async function down(): Promise<void> {
  await sample();
  if (sampler) clearInterval(sampler);
  sampler = undefined;
  const r = await runCli(dir, ['down']);
  expect(r.code, r.output).toBe(0);
  expect(await daemon!.exited).toBe(0);
  daemon = undefined;
}

function survivors(): number[] {
  return [...seen].filter(([pid, start]) => isAlive(pid, start)).map(([pid]) => pid);
}

async function verify(): Promise<VerifyReport> {
  return runVerify(verifyChecks);
}

async function adminDb<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.POSTGRES_PORT, user: 'postgres', password: 'bklite_dev_pass', database: 'postgres' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bksup-demo-e2e-'));
  chmodSync(dir, 0o755); // PostgreSQL runs unprivileged when the tests run as root
  ports = {
    POSTGRES_PORT: await freePort(),
    REDIS_PORT: await freePort(),
    NATS_PORT: await freePort(),
    SERVER_PORT: await freePort(),
    WEB_PORT: await freePort(),
    MLFLOW_PORT: await freePort(),
  };
  writeFileSync(
    join(dir, 'supervisor.config.ts'),
    [
      `import { defineConfig } from ${JSON.stringify(join(REPO, 'src', 'index.ts'))};`,
      `import { demoConfig } from ${JSON.stringify(join(REPO, 'examples', 'bklite-demo', 'stack.ts'))};`,
      `export default defineConfig(() => demoConfig({ root: import.meta.dirname, dataDir: 'data', overrides: ${JSON.stringify(ports)} }));`,
      '',
    ].join('\n'),
  );
  const loaded = await loadConfig({ cwd: dir });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  verifyChecks = loaded.config.verify;
});

afterAll(async () => {
  if (sampler) clearInterval(sampler);
  if (daemon && controlFile(dir)) await runCli(dir, ['down']).catch(() => undefined);
  if (daemon) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
  // Safety net for a failed run: only processes this test saw in the stack's trees.
  for (const pid of survivors()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('the demo stack under bksup', () => {
  it('comes up in dependency order and passes verify', async () => {
    await up();
    const rows = await waitStackUp('completed');
    expect(rows.find((r) => r.name === 'db-init')!.state).toBe('completed');
    for (const n of TASK_UNITS) expect(rows.find((r) => r.name === n)!.pid).toBeNull();
    const report = await verify();
    expect(report.results.map((r) => [r.name, r.ok, r.detail])).toEqual([
      ['the login page lists domain.com', true, 'HTTP 200, 2 expectation(s) met'],
      ['admin can log in', true, 'HTTP 200, 2 expectation(s) met'],
    ]);
    // The same through the CLI.
    const cli = await runCli(dir, ['verify']);
    expect(cli.code, cli.output).toBe(0);
    expect(cli.output).toMatch(/✓ the login page lists domain\.com \(\d+ ms\)\n✓ admin can log in \(\d+ ms\)\nverify: all 2 checks passed/);
    expect(cli.output).not.toContain('password');
    // The postmaster is the supervised pid itself (exec chain), not a wrapper shell.
    expect(readStat((await row('postgres')).pid!)?.comm).toBe('postgres');
  }, 180_000);

  it('reproduces the seed failure when nats_listener is not running, and recovers when it is', async () => {
    const stop = await runCli(dir, ['stop', 'nats_listener']);
    expect(stop.code, stop.output).toBe(0);
    await waitFor(async () => (await row('nats_listener')).state === 'stopped', { timeout: 30_000, message: 'nats_listener stopped' });
    const broken = await verify();
    expect(broken.results[0]).toMatchObject({ ok: false, detail: 'data does not contain "domain.com" (got [])' });
    const cli = await runCli(dir, ['verify']);
    expect(cli.code, cli.output).toBe(1);
    expect(cli.output).toContain('✗ the login page lists domain.com: data does not contain "domain.com" (got [])');

    const start = await runCli(dir, ['start', 'nats_listener']);
    expect(start.code, start.output).toBe(0);
    await waitFor(async () => (await row('nats_listener')).state === 'healthy', { timeout: 60_000, message: 'nats_listener healthy again' });
    expect((await verify()).ok).toBe(true);
  }, 120_000);

  it('restarts nats_listener after kill -9, and the domain list answers again', async () => {
    const before = await row('nats_listener');
    expect(before.state).toBe('healthy');
    process.kill(before.pid!, 'SIGKILL');
    const after = await waitFor(
      async () => {
        const r = await row('nats_listener');
        return r.state === 'healthy' && r.pid !== before.pid ? r : undefined;
      },
      { timeout: 60_000, message: 'nats_listener restarted and healthy' },
    );
    expect(after.restarts).toBeGreaterThan(before.restarts);
    const report = await verify();
    expect(report.results[0]).toMatchObject({ ok: true });
  }, 120_000);

  it('down leaves no process of the stack behind', async () => {
    expect(seen.size).toBeGreaterThanOrEqual(PROCESS_UNITS.length);
    await down();
    expect(survivors()).toEqual([]);
    expect(existsSync(join(dir, '.supervisor', 'control.json'))).toBe(false);
  }, 120_000);

  it('a second up skips db-init (the database is initialised and the migrations are unchanged)', async () => {
    await up();
    const rows = await waitStackUp('skipped');
    expect(rows.find((r) => r.name === 'db-init')).toMatchObject({ state: 'skipped' });
    expect((await verify()).ok).toBe(true);
    // mlflow-db created the database on the first run and found it on this one.
    const mlflowDbLog = readFileSync(join(dir, 'logs', 'mlflow-db.log'), 'utf8');
    expect(mlflowDbLog).toContain('databases created: mlflow; already there: none');
    expect(mlflowDbLog).toContain('database "mlflow" already exists');
  }, 180_000);

  it('after the database is dropped, the next up runs db-init again', async () => {
    // A fresh, empty application database: what a wiped volume looks like to db-init.
    await adminDb(async (c) => {
      await c.query('drop database bklite with (force)');
      await c.query('create database bklite');
    });
    await down();
    expect(survivors()).toEqual([]);

    await up();
    const rows = await waitStackUp('completed');
    expect(rows.find((r) => r.name === 'db-init')).toMatchObject({ state: 'completed' });
    expect((await verify()).ok).toBe(true);
    await down();
    expect(survivors()).toEqual([]);
  }, 240_000);
});
