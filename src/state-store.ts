// `.supervisor/state.json`: what must outlive one daemon run.
// - task fingerprints after their last success (for `once`),
// - every child the daemon started (pid + kernel start time), written as it starts, so that the
//   next `up` after a SIGKILLed daemon can find and stop leftovers without touching a reused pid.
// - the run ids of the daemons whose processes may still run (the <run> of BKSUP_UNIT, see
//   src/units/marker.ts): the next `up` stops every process marked with one of them, detached
//   or not, and then records only its own.
// Writes are atomic (temp file + rename). A task fingerprint is written at once, synchronously;
// started children at the end of the turn that started them (one write for a whole level of the
// graph, still before any other event is handled).
// A child that ended is forgotten in a background write (coalesced, one in flight): it sits
// between a crash and the restart, where a synchronous write+rename cost ~1.8 ms of restart
// latency, and a stale record is harmless (leftovers are matched by pid and start time).
// A malformed file is reported and set aside, never fatal.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TaskStore } from './units/task.ts';

export interface ChildRecord {
  unit: string;
  pid: number;
  startTime: number;
  startedAt: number;
}

interface StateFile {
  version: 1;
  tasks: Record<string, { fingerprint: string; completedAt: number }>;
  children: ChildRecord[];
  /** Run ids of daemons whose processes may still be running (see src/units/marker.ts). */
  runs: string[];
  /**
   * When the daemon of `runs` started (clock ticks after boot, as /proc/PID/stat counts): every
   * process carrying one of their marks started later, so the next `up` reads the environment
   * only of processes that did (~half of its leftover scan on a machine that runs for a while).
   */
  runsSince?: number;
}

export class StateStore implements TaskStore {
  readonly path: string;
  readonly #dir: string;
  #data: StateFile;
  /** Set when the file existed but could not be read; says where it was moved. */
  readonly problem: string | undefined;
  /** Child records changed since the last write began; the background writer is running. */
  #dirty = false;
  #writing = false;

  constructor(stateDir: string) {
    this.#dir = stateDir;
    this.path = join(stateDir, 'state.json');
    const loaded = load(this.path);
    this.#data = loaded.data;
    this.problem = loaded.problem;
  }

  fingerprint(unit: string): string | undefined {
    return this.#data.tasks[unit]?.fingerprint;
  }

  recordSuccess(unit: string, fingerprint: string): void {
    this.#data.tasks[unit] = { fingerprint, completedAt: Date.now() };
    this.#save();
  }

  forget(unit: string): void {
    delete this.#data.tasks[unit];
    this.#save();
  }

  children(): readonly ChildRecord[] {
    return this.#data.children;
  }

  childStarted(rec: ChildRecord): void {
    this.#data.children.push(rec);
    // Still written before anything else happens (no I/O callback, no timer runs first), but
    // once for all the children started in this same turn: a level of the graph starts
    // together, and one write each sat between one unit's spawn and the next (~1.2 ms apiece).
    if (this.#startsPending) return;
    this.#startsPending = true;
    queueMicrotask(() => {
      this.#startsPending = false;
      this.#save();
    });
  }

  #startsPending = false;

  childGone(pid: number): void {
    const before = this.#data.children.length;
    this.#data.children = this.#data.children.filter((c) => c.pid !== pid);
    if (this.#data.children.length !== before) this.#saveSoon();
  }

  /** Resolves once every change so far is on disk (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#writing) await new Promise((r) => setTimeout(r, 1));
  }

  /** The run ids of earlier daemons whose processes may still be running. */
  runs(): readonly string[] {
    return this.#data.runs;
  }

  /** Processes started before this (clock ticks after boot) carry no mark of runs(); 0 when unknown. */
  runsSince(): number {
    return this.#data.runsSince ?? 0;
  }

  /**
   * Everything of earlier runs was stopped: from now on only this run's children and marks count.
   * `startTime`: this daemon's own (clock ticks after boot), when known.
   */
  beginRun(runId: string, startTime?: number): void {
    this.#data.children = [];
    this.#data.runs = [runId];
    if (startTime === undefined) delete this.#data.runsSince;
    else this.#data.runsSince = startTime;
    this.#save();
  }

  #saveSoon(): void {
    this.#dirty = true;
    if (this.#writing) return;
    this.#writing = true;
    void this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        // A snapshot of the current data: whatever changes meanwhile sets #dirty again.
        const text = JSON.stringify(this.#data, null, 2) + '\n';
        const tmp = `${this.path}.${process.pid}.bg.tmp`;
        await mkdir(this.#dir, { recursive: true });
        await writeFile(tmp, text, { mode: 0o600 });
        await rename(tmp, this.path);
      }
    } catch {
      // The next change writes everything again; leftovers are also found by their start time.
    } finally {
      this.#writing = false;
    }
  }

  #save(): void {
    // A background write still in flight would land after this one with older data: have it
    // write once more afterwards.
    if (this.#writing) this.#dirty = true;
    try {
      mkdirSync(this.#dir, { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.#data, null, 2) + '\n', { mode: 0o600 });
      renameSync(tmp, this.path);
      this.#failing = false;
    } catch (err) {
      // A full disk or a broken .supervisor/ must not take the stack down: the daemon goes on
      // from memory and says so once (until a write works again).
      if (!this.#failing) this.onWriteError?.(`cannot write ${this.path}: ${(err as Error).message} (running on; task fingerprints and leftover tracking are kept in memory until it can be written)`);
      this.#failing = true;
    }
  }

  #failing = false;
  /** Told once per failure streak when state.json cannot be written. */
  onWriteError: ((message: string) => void) | undefined;
}

function empty(): StateFile {
  return { version: 1, tasks: {}, children: [], runs: [] };
}

function load(path: string): { data: StateFile; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { data: empty() };
  }
  try {
    const raw = JSON.parse(text) as Partial<StateFile>;
    if (typeof raw !== 'object' || raw === null || raw.version !== 1) throw new Error('unknown format');
    const tasks: StateFile['tasks'] = {};
    for (const [k, v] of Object.entries(raw.tasks ?? {})) {
      if (v && typeof v.fingerprint === 'string') tasks[k] = { fingerprint: v.fingerprint, completedAt: Number(v.completedAt) || 0 };
    }
    const children = Array.isArray(raw.children)
      ? raw.children.filter((c): c is ChildRecord => !!c && Number.isInteger(c.pid) && c.pid > 1 && Number.isFinite(c.startTime) && typeof c.unit === 'string')
      : [];
    // Hex only: a run id is matched as the prefix of an environment value.
    const runs = Array.isArray(raw.runs) ? raw.runs.filter((r): r is string => typeof r === 'string' && /^[0-9a-f]{8,}$/.test(r)) : [];
    const since = Number.isInteger(raw.runsSince) && (raw.runsSince as number) >= 0 ? { runsSince: raw.runsSince as number } : {};
    return { data: { version: 1, tasks, children, runs, ...since } };
  } catch (err) {
    const aside = `${path}.bad-${Date.now()}`;
    try {
      renameSync(path, aside);
    } catch {
      // leave it; the next save overwrites it
    }
    return { data: empty(), problem: `${path} was unreadable (${(err as Error).message}); moved it to ${aside} and started with empty state (tasks with once will run again)` };
  }
}
