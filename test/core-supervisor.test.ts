// The core promises, with real child processes and fixtures that misbehave on purpose.

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './helpers/ports.ts';
import { fixture, removeDir, startStack, tempDir, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { identify, stillAlive } from './helpers/pids.ts';

const stacks: Stack[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) removeDir(d);
});

async function stack(...args: Parameters<typeof startStack>): Promise<Stack> {
  const s = await startStack(...args);
  stacks.push(s);
  if (!args[1]?.dir) dirs.push(s.dir);
  return s;
}

describe('dependency order', () => {
  it('starts B only after A passed its health check (A opens its port after ~1 s)', async () => {
    const port = await freePort();
    const s = await stack({
      units: {
        a: { command: fixture('ready-after.mjs', 1000, port), healthcheck: { http: `http://127.0.0.1:${port}/`, interval: '100ms' } },
        b: { command: fixture('forever.mjs'), dependsOn: { a: 'healthy' } },
        c: { command: fixture('forever.mjs') },
      },
    });
    await s.waitState('b', 'healthy');
    const aHealthy = s.events.findIndex((e) => e.unit === 'a' && e.state === 'healthy');
    const bStarting = s.events.findIndex((e) => e.unit === 'b' && e.state === 'starting');
    const aRunning = s.events.find((e) => e.unit === 'a' && e.state === 'running')!;
    expect(aHealthy).toBeGreaterThanOrEqual(0);
    expect(bStarting).toBeGreaterThan(aHealthy);
    // B waited, and said what for.
    expect(s.events.find((e) => e.unit === 'b' && e.state === 'pending')?.reason).toBe('waiting for a (healthy)');
    // A really was probed: healthy no earlier than ~1 s after it started.
    expect(s.events[aHealthy]!.ts - aRunning.ts).toBeGreaterThanOrEqual(900);
    // C, independent, did not wait for A.
    const cRunning = s.events.findIndex((e) => e.unit === 'c' && e.state === 'running');
    expect(cRunning).toBeLessThan(aHealthy);
  });

  it('stops dependents first on shutdown', async () => {
    const s = await stack({
      units: {
        db: { command: fixture('forever.mjs') },
        api: { command: fixture('forever.mjs'), dependsOn: { db: 'healthy' } },
        web: { command: fixture('forever.mjs'), dependsOn: { api: 'healthy' } },
      },
    });
    await s.waitState('web', 'healthy');
    await s.stop();
    const order = s.events.filter((e) => e.state === 'stopped').map((e) => e.unit);
    expect(order).toEqual(['web', 'api', 'db']);
  });
});

describe('tasks with once', () => {
  it('runs once, is skipped on the next up, runs again when an input changes', async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeFileSync(join(dir, 'migration.sql'), 'create table a();');
    const counter = join(dir, 'runs.txt');
    const user = {
      units: {
        init: { kind: 'task' as const, command: `echo run >> ${counter}`, once: { inputs: ['*.sql'] } },
        app: { command: fixture('forever.mjs'), dependsOn: { init: 'completed' as const } },
      },
    };
    const first = await stack(user, { dir });
    await first.waitState('app', 'healthy');
    expect(first.statesOf('init')).toContain('completed');
    await first.stop();

    const second = await stack(user, { dir });
    await second.waitState('app', 'healthy');
    expect(second.statesOf('init')).toContain('skipped');
    expect(second.statesOf('init')).not.toContain('running');
    await second.stop();

    writeFileSync(join(dir, 'migration.sql'), 'create table b();');
    const third = await stack(user, { dir });
    await third.waitState('app', 'healthy');
    expect(third.statesOf('init')).toContain('completed');
    await third.stop();

    const fourth = await stack(user, { dir, rerun: ['init'] });
    await fourth.waitState('app', 'healthy');
    expect(fourth.statesOf('init')).toContain('completed');
    await fourth.stop();
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('with skipIf, runs again when the world it checks is gone even though the inputs did not change', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const marker = join(dir, 'initialised');
    const counter = join(dir, 'runs.txt');
    const user = {
      units: { init: { kind: 'task' as const, command: `echo run >> ${counter}; touch ${marker}`, once: { skipIf: { exec: `test -f ${marker}` } } } },
    };
    const first = await stack(user, { dir });
    await first.waitState('init', 'completed');
    await first.stop();
    const second = await stack(user, { dir });
    expect((await second.waitState('init', ['skipped', 'completed'])).state).toBe('skipped');
    await second.stop();
    rmSync(marker); // "the database was dropped"
    const third = await stack(user, { dir });
    expect((await third.waitState('init', ['skipped', 'completed'])).state).toBe('completed');
    await third.stop();
    expect(readFileSync(counter, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('a failing task is not recorded and blocks its dependents with a clear reason', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const user = {
      units: {
        'db-init': { kind: 'task' as const, command: 'echo "relation base_user does not exist" >&2; exit 3', once: true },
        server: { command: fixture('forever.mjs'), dependsOn: { 'db-init': 'completed' as const } },
      },
    };
    const s = await stack(user, { dir });
    const failed = await s.waitState('db-init', 'failed');
    expect(failed.exitCode).toBe(3);
    expect(failed.reason).toContain('exited with code 3');
    expect(failed.reason).toContain('relation base_user does not exist');
    await waitFor(() => s.sup.unit('server')!.snapshot().reason === 'waiting: dependency db-init failed');
    expect(s.sup.unit('server')!.state).toBe('pending');
    await s.stop();
    const statePath = join(dir, '.supervisor', 'state.json');
    const state = existsSync(statePath) ? (JSON.parse(readFileSync(statePath, 'utf8')) as { tasks: Record<string, unknown> }) : { tasks: {} };
    expect(state.tasks['db-init']).toBeUndefined();
  });
});

describe('restarts', () => {
  it('restarts a crashing child with growing delays, then gives up after maxRestarts', async () => {
    const s = await stack({
      units: {
        crashy: {
          command: fixture('crash-after.mjs', 0, 7),
          restart: { policy: 'always', backoff: { initial: '100ms', max: '10s' }, maxRestarts: 3, window: '1m' },
        },
      },
    });
    const failed = await s.waitState('crashy', 'failed', 30_000);
    const backoffs = s.events.filter((e) => e.unit === 'crashy' && e.state === 'backoff');
    expect(backoffs).toHaveLength(3);
    const delays = backoffs.map((e) => Number(/in (\d+) ms/.exec(e.reason ?? '')?.[1]));
    expect(delays[0]).toBeGreaterThanOrEqual(90);
    expect(delays[1]).toBeGreaterThan(delays[0]!);
    expect(delays[2]).toBeGreaterThan(delays[1]!);
    expect(backoffs[0]!.reason).toContain('exited with code 7');
    expect(failed.reason).toContain('crash loop');
    expect(failed.reason).toContain('crashing now with code 7');
    expect(s.sup.unit('crashy')!.snapshot().restarts).toBe(3);
  });

  it('with a zero backoff restarts at once, and a stop during that backoff cancels the restart', async () => {
    const s = await stack({
      units: { zero: { command: "sh -c 'exit 3'", restart: { policy: 'always', backoff: { initial: 0, max: 0 }, maxRestarts: 1000, window: '1h' } } },
    });
    let stopAt = -1;
    s.bus.onEvent((e) => {
      // Synchronously inside the 5th 'backoff': the zero-delay restart is queued right then.
      if (e.type === 'state' && e.unit === 'zero' && e.state === 'backoff' && stopAt < 0 && s.statesOf('zero').filter((x) => x === 'backoff').length === 5) {
        stopAt = s.events.length;
        void s.sup.unit('zero')!.stop('test stop in backoff');
      }
    });
    await s.waitState('zero', 'stopped');
    const backoffs = s.events.filter((e) => e.unit === 'zero' && e.state === 'backoff');
    expect(backoffs.length).toBeGreaterThanOrEqual(5);
    for (const b of backoffs) expect(b.reason).toMatch(/restart \d+ in 0 ms/);
    // A restart that survived the stop would run on the next turns of the event loop.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    expect(s.events.slice(stopAt).filter((e) => e.unit === 'zero').map((e) => e.state)).toEqual(['stopped']);
  });

  it('on-failure (the default) leaves a cleanly exiting process stopped', async () => {
    const s = await stack({ units: { once: { command: fixture('crash-after.mjs', 0, 0) } } });
    const ev = await s.waitState('once', 'stopped');
    expect(ev.exitCode).toBe(0);
    expect(s.statesOf('once')).not.toContain('backoff');
  });
});

describe('stopping process trees', () => {
  it('ends a child that ignores SIGTERM and its grandchildren (one in another process group)', async () => {
    const s = await stack({
      units: { stubborn: { command: fixture('ignores-sigterm.mjs'), stop: { timeout: '500ms' } } },
    });
    await s.waitState('stubborn', 'healthy');
    const tree = await waitFor(() => {
      const text = readLog(s, 'stubborn');
      const m = /tree (\d+) (\d+) (\d+)/.exec(text);
      const grand = (text.match(/grandchild \d+/g) ?? []).length;
      return m && grand >= 2 ? m.slice(1).map(Number) : undefined;
    });
    const known = identify(tree);
    expect(stillAlive(known)).toEqual(tree);
    await s.stop();
    expect(stillAlive(known)).toEqual([]);
    expect(readLog(s, 'stubborn')).toContain('sent SIGKILL');
  });
});

describe('logs', () => {
  it('keeps 100,000 lines written as fast as possible, in order, none split or merged, and a final line without newline', async () => {
    // 100k lines of ~130 bytes with their prefixes: one file (rotation has its own tests).
    const s = await stack({ logs: { maxSize: '100MB' }, units: { flood: { command: fixture('floods-output.mjs', 100000, 'nofinalnl') } } });
    await s.waitState('flood', 'stopped', 60_000);
    await s.files.flush();
    const lines = readLog(s, 'flood')
      .split('\n')
      .filter((l) => / stdout /.test(l));
    expect(lines).toHaveLength(100000);
    const pad = 'x'.repeat(80);
    for (let i = 0; i < lines.length; i++) {
      const m = /^\S+ stdout (\d+) (.*)$/.exec(lines[i]!);
      if (!m || m[2] !== `line ${i + 1} ${pad}`) throw new Error(`line ${i + 1} is wrong: ${lines[i]}`);
    }
  });
});

function readLog(s: Stack, unit: string): string {
  try {
    return readFileSync(join(s.config.logs.dir, `${unit}.log`), 'utf8');
  } catch {
    return '';
  }
}

describe('secrets', () => {
  it('masks the config\'s secret values in child output, reasons and status', async () => {
    const s = await stack({
      env: { DB_PASSWORD: 'hunter2-secret', DATABASE_URL: 'postgres://app:pa55word@127.0.0.1:1/db' },
      units: {
        leaky: {
          kind: 'task',
          command: 'echo "connecting with $DB_PASSWORD to $DATABASE_URL"; echo "auth failed for pa55word" >&2; exit 1',
        },
      },
    });
    const failed = await s.waitState('leaky', 'failed');
    await s.files.flush();
    const text = readLog(s, 'leaky');
    expect(text).toContain('connecting with *** to postgres://app:***@127.0.0.1:1/db');
    expect(text).toContain('auth failed for ***');
    for (const where of [text, failed.reason ?? '', JSON.stringify(s.sup.snapshot())]) {
      expect(where).not.toContain('hunter2-secret');
      expect(where).not.toContain('pa55word');
    }
  });
});
