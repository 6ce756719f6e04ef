// Fault injection on the daemon lock: several starters at the same instant in a directory whose
// lock is stale (its daemon died). Exactly one may win; a second winner would be a second daemon
// starting a second copy of every unit.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from '../src/util/proc.ts';
import { writeConfig } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups, FAULT_FIXTURES, TreeWatch, newRun, readControl, treeCommand } from './fixtures/fault/harness.ts';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** A lock left by a daemon that is gone: a pid that is not alive (checked). */
function staleLock(): string {
  let pid = 4_000_000;
  while (isAlive(pid)) pid--;
  return JSON.stringify({ pid, startTime: 1, startedAt: 1 }) + '\n';
}

/** Starts a racing worker; `report` resolves with its lines, `finish()` lets it exit. */
function worker(args: string[]): { report: Promise<string>; finish: () => Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(FAULT_FIXTURES, 'lock-worker.ts'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  cleanups.add(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const report = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.endsWith('end\n')) resolve(out);
    });
    child.once('exit', (code) => reject(new Error(`lock worker exited (${code}) before reporting: ${err}`)));
  });
  return {
    report,
    finish: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

describe('fault injection: racing for a stale daemon lock', () => {
  it('3 processes take over the same stale lock at the same instant: exactly one wins each time, over at least 40 trials that really raced', async () => {
    const TRIALS = 60;
    const WORKERS = 3;
    // Trials whose attempts overlapped in time are the ones that prove something; a busy machine
    // may run the spinning workers one after another, so rounds go on until enough of them did.
    const RACED_WANTED = 40;
    const MAX_ROUNDS = 5;
    const root = cleanups.project('bksup-fault-lock-');
    const t0 = Date.now();
    let trials = 0;
    let raced = 0;
    let allThree = 0;
    const doubles: string[] = [];
    const none: string[] = [];
    for (let round = 0; round < MAX_ROUNDS && raced < RACED_WANTED; round++) {
      const dirs = Array.from({ length: TRIALS }, (_, i) => {
        const d = join(root, `${round}-${i}`, '.supervisor');
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, 'daemon.lock'), i % 4 === 3 ? 'garbage' : staleLock());
        return d;
      });
      // Far enough ahead for every worker to have started (tsx start-up on a busy machine).
      const base = Date.now() + 8000;
      const workers = Array.from({ length: WORKERS }, () => worker([String(base), '80', ...dirs]));
      const outs = await Promise.all(workers.map((w) => w.report));
      await Promise.all(workers.map((w) => w.finish()));
      const wins = new Map<number, number>();
      const windows = new Map<number, Array<[bigint, bigint]>>();
      for (const out of outs) {
        for (const line of out.trim().split('\n')) {
          if (line === 'end') continue;
          const [i, r, start, end] = line.split(' ');
          if (r === 'ok') wins.set(Number(i), (wins.get(Number(i)) ?? 0) + 1);
          windows.set(Number(i), [...(windows.get(Number(i)) ?? []), [BigInt(start!), BigInt(end!)]]);
        }
      }
      for (let i = 0; i < TRIALS; i++) {
        trials++;
        const w = windows.get(i) ?? [];
        // A race: two attempts were inside acquireDaemonLock at the same time.
        if (w.some(([s1, e1], a) => w.some(([s2, e2], b) => a !== b && s1 < e2 && s2 < e1))) raced++;
        const latestStart = w.reduce((m, [st]) => (st > m ? st : m), 0n);
        if (w.length === WORKERS && w.every(([, e]) => e > latestStart)) allThree++;
        if ((wins.get(i) ?? 0) > 1) doubles.push(`${round}-${i}`);
        if (!wins.has(i)) none.push(`${round}-${i}`);
      }
    }
    console.log(
      `[fault-lock-race] ${trials} trials × ${WORKERS} racing processes in ${Date.now() - t0} ms: ${raced} with overlapping attempts (${allThree} all three), ` +
        `${doubles.length} with more than one winner, ${none.length} with none`,
    );
    expect(doubles, 'trials where two processes both took the lock').toEqual([]);
    expect(none, 'trials nobody won').toEqual([]);
    expect(raced, `trials whose lock attempts overlapped in time (of ${trials})`).toBeGreaterThanOrEqual(RACED_WANTED);
  }, 180_000);

  it('3 `bksup up` at once in a directory with a stale lock: one daemon runs, the others refuse', async () => {
    const run = newRun();
    const dir = cleanups.project();
    writeConfig(dir, `{ units: { app: { command: ${treeCommand(run, 'app')}, healthcheck: { log: '^ready ', interval: '100ms' } } } }`);
    mkdirSync(join(dir, '.supervisor'));
    writeFileSync(join(dir, '.supervisor', 'daemon.lock'), staleLock());
    const watch = cleanups.watch(run);
    const ds = [cleanups.daemon(dir), cleanups.daemon(dir), cleanups.daemon(dir)];
    const winner = await waitFor(() => ds.find((d) => readControl(dir)?.pid === d.pid), { timeout: 60_000, message: 'one daemon' });
    await winner.allHealthy(['app']);
    const losers = ds.filter((d) => d !== winner);
    for (const l of losers) {
      expect(await l.cli.exited, l.output()).toBe(1);
      expect(l.output()).toContain(`another supervisor (pid ${winner.pid}) already supervises this directory`);
    }
    expect(JSON.parse(readFileSync(join(dir, '.supervisor', 'daemon.lock'), 'utf8')).pid).toBe(winner.pid);
    const c = watch.scan();
    expect(TreeWatch.whole(c, ['app'])).toBe(true);
    expect(watch.duplicates).toEqual([]);
    expect(await winner.signal('SIGTERM')).toBe(0);
    expect(watch.stillAlive()).toEqual([]);
  }, 120_000);
});
