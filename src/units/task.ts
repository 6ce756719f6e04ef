// A unit that runs to completion: a command, or the built-in Postgres "ensure databases" step.
//
//              start()
//   stopped ─────────► starting ──────────────────────────────────────────────► skipped
//                                 (once: fingerprint unchanged, every output exists, no
//                                  task it depends on ran AND skipIf, if any, passes)
//   pending ─┘   ▲        │ run
//   failed ──┘   │        ▼               exit 0 (fingerprint stored)
//                │     running ─────────────────────────────────────────────► completed
//                │        │ exit ≠ 0
//                │        ├── policy allows another try ──► backoff ──(timer)──┘
//                │        └── otherwise ──► failed (reason = exit + last output lines)
//                │
//   stop() from starting/running/backoff ──► stopping ──► stopped
//
// Callers: the supervisor starts it once its dependencies are met; a user's restart runs it
// again even when `once` would skip it (they asked for it); `up --rerun <task>` does the same.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ResolvedTaskUnit } from '../config/types.ts';
import { createProbe } from '../health/registry.ts';
import { runProbeOnce } from '../health/monitor.ts';
import { ensureDatabases } from '../tasks/postgres-ensure.ts';
import { treeMembers, type ProcStat } from '../util/proc.ts';
import { markIs, spawnChild, stopTree, type ChildExit } from './child.ts';
import { nextMarker, RUN_ID, unitOfMarker } from './marker.ts';
import { describeExit } from './process.ts';
import { UnitBase, type UnitDeps } from './unit.ts';

export interface TaskStore {
  fingerprint(unit: string): string | undefined;
  recordSuccess(unit: string, fingerprint: string): void;
}

export interface TaskUnitDeps extends UnitDeps {
  root: string;
  store: TaskStore;
  /** `up --rerun <task>`: ignore `once` for the first run. */
  rerun?: boolean;
  /**
   * A task this one depends on that ran (completed, not skipped) in this run, if any: what it
   * set up changed (packages installed, database initialised again), so a `once` task runs too.
   */
  dependencyRan?: () => string | undefined;
}

type State =
  | { name: 'idle' }
  | { name: 'starting'; gen: number }
  | { name: 'running'; gen: number; pid: number | null; exited: Promise<unknown>; startedAt: number }
  | { name: 'stopping'; done: Promise<void> }
  | { name: 'backoff'; timer: NodeJS.Timeout };

export class TaskUnit extends UnitBase {
  readonly kind = 'task' as const;
  readonly config: ResolvedTaskUnit;
  readonly #tdeps: TaskUnitDeps;
  #state: State = { name: 'idle' };
  #gen = 0;
  #force: boolean;

  constructor(config: ResolvedTaskUnit, deps: TaskUnitDeps) {
    super(config, deps);
    this.config = config;
    this.#tdeps = deps;
    this.#force = deps.rerun ?? false;
  }

  start(): void {
    const s = this.#state;
    switch (s.name) {
      case 'idle':
        void this.#begin();
        return;
      case 'backoff':
        clearTimeout(s.timer);
        void this.#begin();
        return;
      case 'starting':
      case 'running':
      case 'stopping':
        return;
    }
  }

  async stop(reason: string): Promise<void> {
    const s = this.#state;
    switch (s.name) {
      case 'idle':
        if (this.state === 'pending') this.publish('stopped', { reason, pid: null });
        return;
      case 'backoff':
        clearTimeout(s.timer);
        this.#state = { name: 'idle' };
        this.publish('stopped', { reason, pid: null });
        return;
      case 'stopping':
        return s.done;
      case 'starting':
        // Fingerprinting or skipIf in flight: the generation bump makes its result ignored.
        this.#gen++;
        this.#state = { name: 'idle' };
        this.publish('stopped', { reason, pid: null });
        return;
      case 'running': {
        this.#gen++;
        const pid = s.pid;
        const done = (async () => {
          this.publish('stopping', { reason });
          if (pid !== null) await stopTree(pid, { ...this.config.stop, exited: s.exited, marked: markIs(this.#marker) });
          else await s.exited;
          this.#state = { name: 'idle' };
          this.publish('stopped', { reason, pid: null });
        })();
        this.#state = { name: 'stopping', done };
        return done;
      }
    }
  }

  async restart(reason: string): Promise<void> {
    await this.stop(reason);
    this.#force = true;
    this.clearCrashHistory();
    this.start();
  }

  async #begin(): Promise<void> {
    const gen = ++this.#gen;
    this.#state = { name: 'starting', gen };
    this.publish('starting', { pid: null, exitCode: null });
    const force = this.#force;
    this.#force = false;
    const once = this.config.once;
    let fingerprint: string | undefined;
    if (once) {
      fingerprint = await this.#fingerprint();
      if (gen !== this.#gen) return;
      // Skip only when nothing changed on either side: the inputs (fingerprint) and, when a
      // skipIf probe is given, the world it checks (a dropped database must be set up again
      // even though the migrations did not change).
      // What the task makes (`.venv`, `node_modules`) must still be there: deleting it is a reason to run.
      const missing = once.outputs.find((p) => !existsSync(resolve(this.#tdeps.root, p)));
      const ran = missing === undefined ? this.#tdeps.dependencyRan?.() : undefined;
      if (!force && missing !== undefined) this.system(`${missing} is missing: running`);
      if (!force && ran !== undefined) this.system(`${ran} ran in this run: running too`);
      if (!force && missing === undefined && ran === undefined && fingerprint === this.#tdeps.store.fingerprint(this.name)) {
        if (!once.skipIf) {
          return this.#enterSkipped('fingerprint unchanged since the last successful run (use `up --rerun ' + this.name + '` to force)');
        }
        const probe = createProbe(once.skipIf, { ...this.#probeContext(), timeoutMs: once.skipIf.timeoutMs });
        const res = await runProbeOnce(probe, once.skipIf.timeoutMs);
        probe.close?.();
        if (gen !== this.#gen) return;
        if (res.ok) return this.#enterSkipped(`fingerprint unchanged and skipIf passed (${probe.label})`);
        this.system(`fingerprint unchanged but skipIf did not pass (${res.reason}): running again`);
      }
    }
    const startedAt = Date.now();
    let outcome: { ok: true } | { ok: false; why: string; exit?: ChildExit };
    if (this.config.postgres) {
      const pg = this.config.postgres;
      this.#state = { name: 'running', gen, pid: null, exited: Promise.resolve(), startedAt };
      this.publish('running', { pid: null });
      const exited = ensureDatabases(pg.url, pg.ensureDatabases ?? [], { log: (line) => this.system(line) });
      this.#state.exited = exited;
      const res = await exited;
      outcome = res.ok ? { ok: true } : { ok: false, why: res.reason };
      if (res.ok) this.system(`databases created: ${res.created.join(', ') || 'none'}; already there: ${res.existing.join(', ') || 'none'}`);
      if (!outcome.ok || this.config.command === undefined) return this.#finish(gen, outcome, startedAt, fingerprint);
    }
    if (this.config.command === undefined) return this.#finish(gen, { ok: true }, startedAt, fingerprint);
    if (gen !== this.#gen) return;
    // The mark of the latest run: its processes are stopped with it, wherever they detached to.
    const marker = nextMarker(this.name);
    this.#marker = marker;
    const res = spawnChild({ command: this.config.command, cwd: this.config.cwd, env: this.config.env, marker });
    if (!res.ok) return this.#finish(gen, { ok: false, why: res.reason }, startedAt, fingerprint);
    const { child, pid } = res;
    const exited = new Promise<ChildExit>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    child.on('error', (err) => this.deps.log?.('warn', `${this.name}: child error: ${err.message}`));
    const output = Promise.all([this.pipeStream(child.stdout, 'stdout'), this.pipeStream(child.stderr, 'stderr')]);
    this.#state = { name: 'running', gen, pid, exited, startedAt };
    this.publish('running', { pid });
    const exit = await exited;
    await Promise.race([output, new Promise((r) => setTimeout(r, 500))]);
    // Grandchildren a task left behind must not outlive it.
    await stopTree(pid, { ...this.config.stop, exited: Promise.resolve(), marked: markIs(marker) });
    outcome = exit.code === 0 ? { ok: true } : { ok: false, why: describeExit(exit), exit };
    this.#finish(gen, outcome, startedAt, fingerprint);
  }

  #finish(gen: number, outcome: { ok: true } | { ok: false; why: string; exit?: ChildExit }, startedAt: number, fingerprint: string | undefined): void {
    if (gen !== this.#gen) return;
    const exitCode = outcome.ok ? 0 : (outcome.exit?.code ?? null);
    if (outcome.ok) {
      if (fingerprint !== undefined) this.#tdeps.store.recordSuccess(this.name, fingerprint);
      this.#state = { name: 'idle' };
      this.publish('completed', { pid: null, exitCode, reason: `in ${Date.now() - startedAt} ms` });
      return;
    }
    const decision = this.decideRestart(true, Date.now() - startedAt);
    if (decision.action === 'restart') {
      const reason = `${outcome.why}; retry ${decision.attempt} in ${decision.delayMs} ms`;
      const timer = setTimeout(() => {
        if (this.#state.name === 'backoff' && this.#state.timer === timer) void this.#begin();
      }, decision.delayMs);
      this.#state = { name: 'backoff', timer };
      this.publish('backoff', { pid: null, exitCode, reason });
      return;
    }
    this.#state = { name: 'idle' };
    const why = decision.action === 'give-up' ? `${decision.why}; last: ${outcome.why}` : outcome.why;
    this.publish('failed', { pid: null, exitCode, reason: this.tailReason(why) });
  }

  #marker: string | undefined;

  override processCount(all: ProcStat[]): number {
    const s = this.#state;
    const leader = s.name === 'running' && s.pid !== null ? s.pid : undefined;
    return treeMembers(leader, all, (m) => unitOfMarker(m, RUN_ID) === this.name).length;
  }

  #enterSkipped(reason: string): void {
    this.#state = { name: 'idle' };
    this.publish('skipped', { pid: null, reason });
  }

  #probeContext() {
    return {
      unit: this.name,
      cwd: this.config.cwd,
      env: this.config.env,
      onLogs: () => () => {},
    };
  }

  /** command, cwd, the env the config sets, and the content hash of every input file. */
  async #fingerprint(): Promise<string> {
    const h = createHash('sha256');
    h.update(JSON.stringify({ command: this.config.command ?? null, postgres: this.config.postgres ?? null, cwd: this.config.cwd, env: sortKeys(this.config.configEnv) }));
    const patterns = this.config.once?.inputs ?? [];
    if (patterns.length) {
      const { glob } = await import('tinyglobby');
      const files = (await glob([...patterns], { cwd: this.#tdeps.root, onlyFiles: true, dot: true })).sort();
      for (const f of files) {
        h.update(`\0${f}\0`);
        try {
          h.update(await readFile(`${this.#tdeps.root}/${f}`));
        } catch {
          h.update('<unreadable>');
        }
      }
    }
    return h.digest('hex');
  }
}

function sortKeys(o: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}
