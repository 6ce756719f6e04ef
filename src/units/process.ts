// A long-running child process, kept alive by its restart policy.
//
//                start()                  no healthcheck, or first probe pass
//   stopped ────────────► starting ──► running ─────────────────────────► healthy
//   pending ─┘  ▲                        │  ▲                                 │
//   failed ──┘  │ backoff timer          │  └──── probe passes again ───┐     │ `retries` failures
//               │                        │                              │     ▼
//            backoff ◄─── exit, or ──────┴──── exit ◄──────────────── unhealthy
//               │         unhealthy         (every exit first ends any      │
//               │         tree stopped       leftover grandchildren)        │ tree stopped
//               │                                                          ▼
//               └── budget spent ──► failed            stopping ◄──────────┘ (also stop()/restart())
//                                                        │
//   exit with policy saying "no restart" ──► stopped     └──► stopped, or starting after restart()
//   backoff timer while a needed dependency is down ──► pending (the supervisor starts it later)
//
// Who causes what: the supervisor calls start() when dependencies are met and stop() on
// shutdown; the user calls start/stop/restart through the control API; the child causes exits;
// the HealthMonitor causes healthy/unhealthy; the backoff timer causes the next start.
// Every callback carries the Run it belongs to and is ignored when that Run is no longer current.
//
// `starting` takes one of two ways to a child: a spare made in advance (src/units/spare.ts: while
// the unit was `pending`, or during the previous run of a unit that is being restarted) becomes
// the unit by exec; otherwise spawnChild forks the daemon. The spare is dropped by stop(), and when
// the unit ends up stopped or failed.
//
// A `tty: true` unit starts on a pseudo-terminal instead (src/units/pty.ts; never from a spare,
// whose pipes cannot become a terminal), bound to the unit's UnitTerminal for `bksup attach`. Its
// child leads its own session and group and carries its mark like any other, so stopping,
// restarting and the sweeps are the same.

import type { ResolvedProcessUnit } from '../config/types.ts';
import { createProbe } from '../health/registry.ts';
import { HealthMonitor } from '../health/monitor.ts';
import { readStat, treeMembers, type ProcStat } from '../util/proc.ts';
import { groupAlive, markIs, spawnChild, stopTree, sweepLeftovers, sweepNow, type ChildExit, type SpawnResult, type SpawnSpec } from './child.ts';
import { nextMarker, RUN_ID, unitOfMarker } from './marker.ts';
import { spawnPty } from './pty.ts';
import { discardSpare, launchSpare, prepareSpare, spareFits, type Spare } from './spare.ts';
import { UnitTerminal } from './terminal.ts';
import type { UnitSnapshot } from './types.ts';
import { UnitBase, type UnitDeps } from './unit.ts';
import { describePortHolders, loopbackPort } from '../util/port-holder.ts';

export interface ProcessUnitDeps extends UnitDeps {
  /** Records a started child (pid, start time) so a later daemon can find leftovers. */
  onChildStarted?: (unit: string, pid: number, startTime: number) => void;
  onChildGone?: (unit: string, pid: number) => void;
}

interface Run {
  pid: number;
  /** BKSUP_UNIT of this run: finds its processes wherever they detached to. */
  marker: string | undefined;
  startedAt: number;
  exited: Promise<ChildExit>;
  exit: ChildExit | undefined;
  output: Promise<void>;
  monitor: HealthMonitor | undefined;
  /** Unsubscribes the "output may mean ready" listener (see #watchHealth). */
  stopPoking: (() => void) | undefined;
}

/** A child just started, by either way (pipes or terminal). */
type Launch = { ok: true; pid: number; marker: string | undefined; exited: Promise<ChildExit>; output: Promise<void> } | { ok: false; reason: string };

type EndCause =
  | { kind: 'exit' }
  | { kind: 'unhealthy'; reason: string }
  | { kind: 'stop'; reason: string; then: 'stay' | 'start' };

type State =
  | { name: 'idle' }
  | { name: 'running' | 'healthy' | 'unhealthy'; run: Run }
  | { name: 'stopping'; run: Run; cause: EndCause; done: Promise<void> }
  | { name: 'backoff'; timer: NodeJS.Timeout | NodeJS.Immediate };

/**
 * First wait between health attempts before the first pass (see HealthTimingMs.startIntervalMs).
 * 1 ms rather than 2: the waits stay at 1 ms for the first ~20 attempts, which halves the wait at
 * a 200 ms start-up for 17% more attempts over a 5 s one (a refused connect costs ~0.15 ms of CPU).
 */
const START_PROBE_MS = 1;
const START_PROBE_SPAWNING_MS = 50;

/** How long after an exit the background scan for leftovers outside the group runs. */
const SWEEP_DELAY_MS = 25;

export class ProcessUnit extends UnitBase {
  readonly kind = 'process' as const;
  readonly config: ResolvedProcessUnit;
  readonly #pdeps: ProcessUnitDeps;
  #state: State = { name: 'idle' };
  /** `tty: true`: the terminal `bksup attach` connects to. */
  readonly terminal: UnitTerminal | undefined;

  constructor(config: ResolvedProcessUnit, deps: ProcessUnitDeps) {
    super(config, deps);
    this.config = config;
    this.#pdeps = deps;
    this.terminal = config.tty ? new UnitTerminal(config.name, (text) => this.system(text)) : undefined;
  }

  override snapshot(): UnitSnapshot {
    const snap = super.snapshot();
    return this.terminal ? { ...snap, tty: { attached: this.terminal.attached } } : snap;
  }

  start(): void {
    const s = this.#state;
    switch (s.name) {
      case 'idle':
        this.#spawn();
        return;
      case 'backoff':
        cancelTimer(s.timer);
        this.#spawn();
        return;
      case 'stopping':
        if (s.cause.kind === 'stop') s.cause.then = 'start';
        return;
      case 'running':
      case 'healthy':
      case 'unhealthy':
        return;
    }
  }

  async stop(reason: string): Promise<void> {
    // Both begin in this turn (a pending zero-delay restart must not slip in between). What
    // finished runs left behind is part of the unit too: their sweeps are done before it is stopped.
    await Promise.all([this.#dropSpare(), this.#stopNow(reason).then(() => this.#finishSweeps())]);
  }

  async #stopNow(reason: string): Promise<void> {
    const s = this.#state;
    switch (s.name) {
      case 'idle':
        if (this.state !== 'stopped' && this.state !== 'disabled' && this.state !== 'failed') this.publish('stopped', { reason, pid: null });
        return;
      case 'backoff':
        cancelTimer(s.timer);
        this.#state = { name: 'idle' };
        this.publish('stopped', { reason, pid: null });
        return;
      case 'stopping':
        // A stop during a stop: stay stopped afterwards, whatever the first one intended.
        s.cause = { kind: 'stop', reason, then: 'stay' };
        return s.done;
      case 'running':
      case 'healthy':
      case 'unhealthy':
        return this.#endRun(s.run, { kind: 'stop', reason, then: 'stay' });
    }
  }

  async restart(reason: string): Promise<void> {
    this.clearCrashHistory();
    const s = this.#state;
    switch (s.name) {
      case 'running':
      case 'healthy':
      case 'unhealthy':
        return this.#endRun(s.run, { kind: 'stop', reason, then: 'start' });
      case 'stopping':
        s.cause = { kind: 'stop', reason, then: 'start' };
        return s.done;
      case 'idle':
      case 'backoff':
        this.start();
        return;
    }
  }

  /** A child started in advance for this unit's next start (src/units/spare.ts). */
  #spare: Spare | undefined;
  #spareScheduled = false;
  /** The last run ended in a restart: keep a spare ready for the next one. */
  #restarting = false;

  /** Waiting for dependencies: the start that follows is made ready meanwhile. */
  override markPending(reason: string): void {
    super.markPending(reason);
    if (this.#state.name === 'idle') this.#prepareSpareSoon();
  }

  // Off the current turn: a level of the graph starts first, its dependents' spares after.
  #prepareSpareSoon(): void {
    if (this.#spare || this.#spareScheduled || this.terminal) return;
    this.#spareScheduled = true;
    setImmediate(() => {
      this.#spareScheduled = false;
      const s = this.#state.name;
      // Still wanted: waiting for its dependencies, or running while being restarted (not if it
      // started, stopped or failed meanwhile).
      const waiting = s === 'idle' && this.state === 'pending';
      const running = (s === 'running' || s === 'healthy' || s === 'unhealthy') && this.#restarting;
      if (this.#spare || !(waiting || running)) return;
      this.#spare = prepareSpare({ cwd: this.config.cwd, env: this.config.env, marker: nextMarker(this.name) });
    });
  }

  #dropSpare(): Promise<void> {
    const spare = this.#spare;
    this.#spare = undefined;
    return spare ? discardSpare(spare) : Promise.resolve();
  }

  #spawn(): void {
    this.publish('starting', { pid: null, exitCode: null });
    const spec = { command: this.config.command, cwd: this.config.cwd, env: this.config.env };
    const res = this.terminal ? this.#launchOnTerminal(spec, this.terminal) : this.#launchPiped(spec);
    if (!res.ok) {
      this.system(`could not start: ${res.reason}`);
      this.#afterRun({ failed: true, ranMs: 0, why: res.reason, exit: undefined });
      return;
    }
    const { pid, marker, exited } = res;
    const run: Run = { pid, marker, startedAt: Date.now(), exited, exit: undefined, output: res.output, monitor: undefined, stopPoking: undefined };
    // First of the exit's callbacks: everything awaiting `exited` later sees run.exit set.
    void exited.then((exit) => (run.exit = exit));
    this.#state = { name: 'running', run };
    this.publish('running', { pid });
    // A unit that is being restarted will likely be again: its next start is made ready now.
    if (this.#restarting) this.#prepareSpareSoon();
    void exited.then(() => this.#onExit(run));
    // After the other units starting in this turn (a level of the graph) were launched too: the
    // /proc read for state.json and the probe's set-up and first attempt (~0.3-0.6 ms) no longer
    // delay the next unit's launch. Still before any I/O callback or timer of this turn.
    queueMicrotask(() => {
      const st = readStat(pid);
      if (st) this.#pdeps.onChildStarted?.(this.name, pid, st.startTime);
      if (this.#isCurrent(run)) this.#watchHealth(run);
    });
  }

  #launchPiped(spec: Omit<SpawnSpec, 'marker'>): Launch {
    const spare = this.#spare;
    this.#spare = undefined;
    let res: SpawnResult;
    let marker: string | undefined;
    if (spare && spareFits(spare, spec)) {
      res = launchSpare(spare, spec.command);
      marker = spare.marker;
    } else {
      if (spare) void discardSpare(spare);
      marker = nextMarker(this.name);
      res = spawnChild({ ...spec, marker });
    }
    if (!res.ok) return res;
    const { child, pid } = res;
    const exited = new Promise<ChildExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.on('error', (err) => this.deps.log?.('warn', `${this.name}: child error: ${err.message}`));
    const output = Promise.all([this.pipeStream(child.stdout, 'stdout'), this.pipeStream(child.stderr, 'stderr')]).then(() => {});
    return { ok: true, pid, marker, exited, output };
  }

  #launchOnTerminal(spec: Omit<SpawnSpec, 'marker'>, terminal: UnitTerminal): Launch {
    const marker = nextMarker(this.name);
    const res = spawnPty({ ...spec, marker }, terminal.size);
    if (!res.ok) return res;
    const { child } = res;
    terminal.bind(child);
    return { ok: true, pid: child.pid, marker, exited: child.exited, output: this.pipeStream(child.output, 'stdout') };
  }

  #watchHealth(run: Run): void {
    const hc = this.config.healthcheck;
    if (!hc) {
      this.#enterHealthy(run);
      return;
    }
    const probe = createProbe(hc.probe, {
      unit: this.name,
      cwd: this.config.cwd,
      env: this.config.env,
      timeoutMs: hc.timeoutMs,
      onLogs: (fn) => this.bus.onLogs((b) => b.unit === this.name && fn(b)),
    });
    // Until the first pass, probe on a fast, growing cadence (+2% each, up to interval), and at
    // once whenever the unit prints something: servers say when they are ready. Probes that
    // start a process (exec, docker) begin slower: each attempt costs a fork.
    const spawns = 'exec' in hc.probe || 'docker' in hc.probe;
    run.monitor = new HealthMonitor(probe, { ...hc, startIntervalMs: spawns ? START_PROBE_SPAWNING_MS : START_PROBE_MS }, {
      onHealthy: () => this.#isCurrent(run) && this.#enterHealthy(run),
      onUnhealthy: (reason) => this.#isCurrent(run) && this.#enterUnhealthy(run, reason),
      onProgress: (result) => {
        if (!this.#isCurrent(run)) return;
        this.health = result.ok ? 'passing' : `failing: ${result.reason}`;
      },
      onAttempt: (a) => this.bus.publishProbe({ unit: this.name, ...a }),
    });
    run.monitor.start();
    const monitor = run.monitor;
    run.stopPoking = this.bus.onLogs((b) => {
      if (b.unit === this.name && b.stream !== 'system') monitor.poke();
    });
  }

  override hintReady(): void {
    const s = this.#state;
    if (s.name === 'running') s.run.monitor?.poke(0);
  }

  #isCurrent(run: Run): boolean {
    const s = this.#state;
    return (s.name === 'running' || s.name === 'healthy' || s.name === 'unhealthy') && s.run === run;
  }

  #enterHealthy(run: Run): void {
    run.stopPoking?.();
    run.stopPoking = undefined;
    if (this.config.healthcheck) this.health = 'passing';
    this.#state = { name: 'healthy', run };
    this.publish('healthy', { pid: run.pid });
  }

  #enterUnhealthy(run: Run, reason: string): void {
    this.health = `failing: ${reason}`;
    this.#state = { name: 'unhealthy', run };
    this.publish('unhealthy', { pid: run.pid, reason });
    void this.#endRun(run, { kind: 'unhealthy', reason });
  }

  #onExit(run: Run): void {
    const s = this.#state;
    // Exits during `stopping` are awaited by #endRun itself.
    if (s.name === 'stopping' || !this.#isCurrent(run)) return;
    void this.#endRun(run, { kind: 'exit' });
  }

  /** Ends a run for any cause: stops the whole tree (leftovers too), then decides what comes next. */
  #endRun(run: Run, cause: EndCause): Promise<void> {
    run.monitor?.stop();
    run.stopPoking?.();
    run.stopPoking = undefined;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const state: State & { name: 'stopping' } = { name: 'stopping', run, cause, done };
    this.#state = state;
    // After an exit, one kill(-pgid, 0) tells whether grandchildren remain in the group; the
    // /proc scan for members that left the group (~3 ms, a third of a crash loop's restart
    // latency) runs in the background instead (#sweepLater).
    const needsStop = !run.exit || groupAlive(run.pid);
    if (!needsStop) this.#sweepLater(run.pid, run.marker);
    if (cause.kind === 'stop') this.publish('stopping', { pid: run.pid, reason: cause.reason });
    else if (needsStop && cause.kind === 'unhealthy') this.publish('stopping', { pid: run.pid, reason: `unhealthy: ${cause.reason}` });
    const { signal, timeoutMs } = this.config.stop;
    const stopping = needsStop
      ? stopTree(run.pid, {
          signal,
          timeoutMs,
          exited: run.exited,
          marked: markIs(run.marker),
          onSlow: (alive, ms) => {
            const msg = `${this.name} is slow to stop: pids ${alive.join(', ')} still alive after ${Math.round(ms / 1000)}s (SIGKILL at ${Math.round(timeoutMs / 1000)}s)`;
            this.system(msg);
            this.deps.log?.('warn', msg);
          },
        })
      : Promise.resolve({ killed: false, elapsedMs: 0 });
    void stopping
      .then(async (res) => {
        await run.exited;
        // Let the pipes drain so the last lines (a final line without newline too) are kept.
        await Promise.race([run.output, new Promise((r) => setTimeout(r, 500))]);
        this.#pdeps.onChildGone?.(this.name, run.pid);
        if (res.killed) this.system(`stop timeout (${timeoutMs} ms) reached: sent SIGKILL`);
        const exit = run.exit;
        const exitText = describeExit(exit);
        const current = state.cause; // may have been changed by a stop()/restart() meanwhile
        if (current.kind === 'stop') {
          this.#state = { name: 'idle' };
          this.publish('stopped', { pid: null, exitCode: exit?.code ?? null, signal: exit?.signal ?? null, reason: current.reason });
          if (current.then === 'start') this.#spawn();
        } else {
          const failed = current.kind === 'unhealthy' || !exit || exit.code !== 0;
          const why = current.kind === 'unhealthy' ? `unhealthy: ${current.reason}` : exitText;
          this.#afterRun({ failed, ranMs: Date.now() - run.startedAt, why, exit });
        }
      })
      .finally(finish);
    return done;
  }

  /**
   * Ends members of a finished tree that are outside its process group (they changed group within
   * the session, were forked by such a member, or detached and carry the run's mark); found by a
   * /proc scan a little later, off the restart path.
   */
  #sweepLater(leader: number, marker: string | undefined): void {
    const { signal, timeoutMs } = this.config.stop;
    const marked = markIs(marker);
    this.#sweepsQueued++;
    sweepLeftovers(leader, SWEEP_DELAY_MS, (left) => {
      this.#sweepsQueued--;
      if (left.length === 0) return;
      const stopping = stopTree(leader, { signal, timeoutMs, exited: Promise.resolve(), marked }).then((res) => {
        const msg = `${this.name}: ended processes left behind by pid ${leader} outside its process group${res.killed ? ' (needed SIGKILL)' : ''}`;
        this.system(msg);
        this.deps.log?.('warn', msg);
      });
      this.#sweepStops.add(stopping);
      void stopping.finally(() => this.#sweepStops.delete(stopping));
    }, marked);
  }

  /** Sweeps queued by #sweepLater, and the stops they started, not finished yet. */
  #sweepsQueued = 0;
  readonly #sweepStops = new Set<Promise<void>>();

  #finishSweeps(): Promise<unknown> {
    if (this.#sweepsQueued > 0) sweepNow();
    return Promise.all([...this.#sweepStops]);
  }

  /** Live processes of this unit in `all`: the current run's tree, and every process marked as this unit's (a waiting spare aside). */
  override processCount(all: ProcStat[]): number {
    const s = this.#state;
    const run = s.name === 'idle' || s.name === 'backoff' ? undefined : s.run;
    const spare = this.#spare?.marker;
    // After the leader was reaped its pid may already be someone else's.
    const leader = run && !run.exit ? run.pid : undefined;
    return treeMembers(leader, all, (m) => m !== spare && unitOfMarker(m, RUN_ID) === this.name).length;
  }

  #withPortHolder(why: string): string {
    const port = this.config.healthcheck ? loopbackPort(this.config.healthcheck.probe) : undefined;
    const holder = port === undefined ? undefined : describePortHolders(port);
    return holder ? `${why}; ${holder}` : why;
  }

  #afterRun(run: { failed: boolean; ranMs: number; why: string; exit: ChildExit | undefined }): void {
    // A child that died while something else holds its port (a leftover server) most likely died
    // of that: say who holds it.
    const o = run.failed && run.exit ? { ...run, why: this.#withPortHolder(run.why) } : run;
    const decision = this.decideRestart(o.failed, o.ranMs);
    const extras = { pid: null, exitCode: o.exit?.code ?? null, signal: o.exit?.signal ?? null };
    switch (decision.action) {
      case 'restart': {
        this.#restarting = true;
        const reason = `${o.why}; restart ${decision.attempt} in ${decision.delayMs} ms`;
        const again = (): void => {
          if (this.#state.name !== 'backoff' || this.#state.timer !== timer) return;
          const hold = this.deps.holdRestart?.(this.name);
          if (hold === undefined) return this.#spawn();
          this.#state = { name: 'idle' };
          this.markPending(hold);
        };
        // A zero backoff restarts on the next turn of the event loop: a 0 ms timer would wait 1 ms.
        const timer = decision.delayMs > 0 ? setTimeout(again, decision.delayMs) : setImmediate(again);
        this.#state = { name: 'backoff', timer };
        this.publish('backoff', { ...extras, reason });
        return;
      }
      case 'stop': {
        this.#state = { name: 'idle' };
        this.#restarting = false;
        void this.#dropSpare();
        if (o.failed) {
          this.publish('failed', { ...extras, reason: this.tailReason(`${o.why} (restart policy ${this.config.restart.policy})`) });
        } else {
          this.publish('stopped', { ...extras, reason: o.why });
        }
        return;
      }
      case 'give-up': {
        this.#state = { name: 'idle' };
        this.#restarting = false;
        void this.#dropSpare();
        this.publish('failed', { ...extras, reason: this.tailReason(`${decision.why}; last exit: ${o.why}`) });
        return;
      }
    }
  }
}

export function describeExit(exit: ChildExit | undefined): string {
  if (!exit) return 'did not start';
  if (exit.signal) return `killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

function cancelTimer(t: NodeJS.Timeout | NodeJS.Immediate): void {
  if ('hasRef' in t && 'refresh' in t) clearTimeout(t);
  else clearImmediate(t as NodeJS.Immediate);
}
