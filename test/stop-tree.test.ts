// stopTree on real process trees, in this process: the unit's stop signal reaches every member
// (in the group, in another session, forked after the signal, reachable only through a parent that
// dies first, or only by its mark), SIGKILL ends what ignores it at the deadline and not before,
// and nothing outside the tree is touched. The same guarantee end to end (through the daemon) is
// in core-supervisor and escape; these cases let `npm run mutation tree-kill` check stopTree itself.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { markIs, spawnChild, stopTree } from '../src/units/child.ts';
import { listProcesses, markOf } from '../src/util/proc.ts';
import { identify, stillAlive, type KnownProcess } from './helpers/pids.ts';
import { FIXTURES } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

const MEMBER = join(FIXTURES, 'tree-member.mjs');
const NODE = process.execPath;

let dir = '';
let started: KnownProcess[] = [];
afterEach(() => {
  for (const p of stillAlive(started)) process.kill(p, 'SIGKILL');
  started = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

interface Tree {
  leader: number;
  members: number[];
  exited: Promise<unknown>;
  record: string;
  marker: string;
}

/** Starts `command` as a unit's child would be, and waits for `count` members to be ready. */
async function startTree(command: string | string[], count: number): Promise<Tree> {
  dir = mkdtempSync(join(tmpdir(), 'bksup-stoptree-'));
  const record = join(dir, 'record');
  const marker = `stoptree${process.pid}:app:${Date.now()}`;
  const env = { ...(process.env as Record<string, string>), R: record, M: MEMBER, N: NODE };
  const r = spawnChild({ command, cwd: dir, env, marker });
  if (!r.ok) throw new Error(r.reason);
  const child: ChildProcess = r.child;
  const exited = new Promise((res) => child.once('exit', res));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const members = await waitFor(() => {
    const pids = [...out.matchAll(/^member (\d+)$/gm)].map((m) => Number(m[1]));
    return pids.length >= count ? pids : undefined;
  }, { timeout: 30_000, message: `${count} members to start (output: ${out})` });
  started.push(...identify([r.pid, ...members]));
  return { leader: r.pid, members, exited, record, marker };
}

/** Signals each member recorded, by pid. SIGKILL leaves no record. */
function signalsOf(t: Tree): Map<number, Set<string>> {
  const got = new Map<number, Set<string>>();
  const text = existsSync(t.record) ? readFileSync(t.record, 'utf8') : '';
  for (const line of text.split('\n').filter(Boolean)) {
    const [pid, sig] = line.split(' ');
    const set = got.get(Number(pid)) ?? new Set<string>();
    set.add(sig!);
    got.set(Number(pid), set);
  }
  return got;
}

describe('stopTree', () => {
  it('ends a group that obeys the stop signal with that signal alone, and touches nothing outside it', async () => {
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' });
    started.push(...identify([bystander.pid!]));
    const t = await startTree('$N $M $R exit & $N $M $R exit & exec $N $M $R exit', 3);
    let reaped = false;
    void t.exited.then(() => (reaped = true));
    const t0 = Date.now();
    const res = await stopTree(t.leader, { signal: 'SIGTERM', timeoutMs: 30_000, exited: t.exited, marked: markIs(t.marker) });
    expect(reaped, 'stopTree resolves only once the child was reaped').toBe(true);
    expect(res.killed).toBe(false);
    expect(res.elapsedMs).toBeLessThanOrEqual(Date.now() - t0);
    expect(stillAlive(identify(t.members))).toEqual([]);
    const got = signalsOf(t);
    for (const m of t.members) expect([...(got.get(m) ?? [])], `member ${m}`).toEqual(['SIGTERM']);
    expect(stillAlive(identify([bystander.pid!]))).toEqual([bystander.pid]);
  });

  it("sends the unit's stop signal to every member, in the group or in another session, then SIGKILL at the deadline", async () => {
    const t = await startTree('$N $M $R ignore & setsid $N $M $R ignore & exec $N $M $R ignore', 3);
    const res = await stopTree(t.leader, { signal: 'SIGHUP', timeoutMs: 500, exited: t.exited, marked: markIs(t.marker) });
    expect(res.killed).toBe(true);
    expect(res.elapsedMs).toBeGreaterThanOrEqual(500); // SIGKILL never before the stop timeout
    expect(stillAlive(identify(t.members))).toEqual([]);
    const got = signalsOf(t);
    for (const m of t.members) expect([...(got.get(m) ?? [])], `member ${m}`).toEqual(['SIGHUP']);
  });

  it('a member forked after the stop signal gets the stop signal too, not a SIGKILL at the deadline', async () => {
    // The shell forks a new member into the group when signalled (after the group signal), then exits.
    const t = await startTree(['/bin/sh', '-c', 'trap "$N $M $R exit & exit 0" TERM; echo member $$; while :; do sleep 0.05; done'], 1);
    const res = await stopTree(t.leader, { signal: 'SIGTERM', timeoutMs: 30_000, exited: t.exited, marked: markIs(t.marker) });
    expect(res.killed).toBe(false);
    expect(listProcesses().filter((p) => markOf(p) === t.marker)).toEqual([]);
  });

  it('a member that left the session without a mark is stopped though its parent died of the first signal', async () => {
    const t = await startTree('exec $N $M $R escape', 2);
    const escaped = t.members.find((m) => m !== t.leader)!;
    const res = await stopTree(t.leader, { signal: 'SIGTERM', timeoutMs: 500, exited: t.exited, marked: markIs(t.marker) });
    expect(res.killed).toBe(true);
    expect(stillAlive(identify(t.members))).toEqual([]);
    expect([...(signalsOf(t).get(escaped) ?? [])]).toEqual(['SIGTERM']);
  });

  it('names the pids holding the stop up while it waits', async () => {
    const t = await startTree('exec $N $M $R ignore', 1);
    const slow: [number[], number][] = [];
    await stopTree(t.leader, { signal: 'SIGTERM', timeoutMs: 800, exited: t.exited, slowEveryMs: 200, onSlow: (alive, ms) => slow.push([alive, ms]) });
    expect(slow.length).toBeGreaterThan(0);
    for (const [alive, ms] of slow) {
      expect(alive).toEqual([t.leader]);
      expect(ms).toBeGreaterThanOrEqual(200);
    }
  });

  it("without a leader (a previous run's processes), stops exactly those carrying the mark", async () => {
    const t = await startTree('$N $M $R exit & $N $M $R exit & exec $N $M $R exit', 3);
    await stopTree(undefined, { signal: 'SIGTERM', timeoutMs: 30_000, exited: Promise.resolve(), marked: markIs(t.marker) });
    expect(stillAlive(identify(t.members))).toEqual([]);
    await t.exited;
  });
});
