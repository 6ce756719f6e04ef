// The conductor: owns one unit object per configured unit, starts each as soon as its
// dependencies meet their conditions, and stops everything dependents-first.
//
// Starting: every state event re-evaluates the wanted units that were not launched yet
// (coalesced to one pass per microtask). A unit is launched once; after that its own restart
// policy keeps it alive, and only a user's start/restart launches it again.
// Stopping: stopOne(x) waits for stopOne of every direct dependent of x, then stops x; all
// units are asked at once, so independent branches stop in parallel and each unit stops only
// after everything that needs it has.
// Watching and reloading (src/watch/, src/reload.ts) go through the same paths: a watched change
// restarts a unit like `bksup restart` does (dependents first when it cascades), and a reload
// stops removed and changed units, swaps in the new config and lets the start path do the rest.

import type { DependencyCondition, ResolvedConfig } from './config/types.ts';
import type { EventBus, UnitStateName } from './events.ts';
import { ComposeProjects, ComposeUnit } from './units/compose.ts';
import { ProcessUnit } from './units/process.ts';
import { TaskUnit } from './units/task.ts';
import type { ControlResult, SupervisorHandle, TerminalLookup, UnitSnapshot } from './units/types.ts';
import { daemonSecrets } from './util/secrets.ts';
import type { UnitBase, UnitDeps } from './units/unit.ts';
import type { StateStore } from './state-store.ts';
import type { ReloadPlan } from './reload-plan.ts';
import { listProcesses, type ProcStat } from './util/proc.ts';

export interface SupervisorOptions {
  config: ResolvedConfig;
  bus: EventBus;
  store: StateStore;
  log?: UnitDeps['log'];
  /** Task names whose `once` is ignored for this run (`up --rerun`). */
  rerun?: readonly string[];
  random?: () => number;
  /**
   * Values to mask everywhere (util/secrets.ts), kept up to date in place on a reload; the daemon
   * shares the array with its supervisor log. Default: computed from the config.
   */
  secrets?: string[];
}

const SATISFIES: Record<DependencyCondition, readonly UnitStateName[]> = {
  started: ['running', 'healthy', 'unhealthy', 'completed', 'skipped'],
  healthy: ['healthy', 'completed', 'skipped'],
  completed: ['completed', 'skipped'],
};

/** An optional task that failed still lets `completed` dependents go on (dev.sh's `|| true`). */
function tolerated(unit: UnitBase, cond: DependencyCondition): boolean {
  return cond === 'completed' && unit.state === 'failed' && unit.config.kind === 'task' && unit.config.optional;
}

/** The /proc scan behind process counts is reused this long: a status loop or a dashboard costs at most 4 scans a second. */
const PROCESS_COUNT_MS = 250;

/** Dependency states after which a waiting dependent cannot proceed without someone acting. */
const DEAD_END: readonly UnitStateName[] = ['failed', 'stopped'];

export class Supervisor implements SupervisorHandle {
  readonly bus: EventBus;
  #config: ResolvedConfig;
  readonly #secrets: string[];
  readonly #opts: SupervisorOptions;
  readonly #units = new Map<string, UnitBase>();
  readonly #dependents = new Map<string, string[]>();
  readonly #wanted = new Set<string>();
  readonly #launched = new Set<string>();
  /** Being restarted for a watched change: dependents wait for it as if it were down. */
  readonly #cycling = new Set<string>();
  /** `up` without unit names: units added by a reload are wanted too. */
  #wantAll = false;
  readonly #projects = new ComposeProjects();
  readonly #store: StateStore;
  #evaluateQueued = false;
  #shutdown: Promise<void> | undefined;
  #resolveStopped!: () => void;
  /** Resolves once a shutdown (from any caller) has stopped every unit. */
  readonly stopped: Promise<void> = new Promise((r) => (this.#resolveStopped = r));

  constructor(opts: SupervisorOptions) {
    this.bus = opts.bus;
    this.#config = opts.config;
    this.#secrets = opts.secrets ?? daemonSecrets(opts.config);
    this.#opts = opts;
    this.#store = opts.store;
    const rerun = new Set(opts.rerun ?? []);
    for (const name of opts.config.order) this.#units.set(name, this.#createUnit(name, rerun.has(name)));
    this.#indexDependents();
    this.bus.onEvent((e) => {
      if (e.type !== 'state') return;
      // A unit restarted for a change is back on its way up: its dependents may follow it.
      if (this.#cycling.has(e.unit) && e.state !== 'stopping' && e.state !== 'stopped') this.#cycling.delete(e.unit);
      this.#propagate(e.unit, e.state);
      if (e.state === 'healthy') this.#hintCoDependencies(e.unit);
      this.#scheduleEvaluate();
    });
  }

  get config(): ResolvedConfig {
    return this.#config;
  }

  #createUnit(name: string, rerun: boolean): UnitBase {
    const opts = this.#opts;
    const cfg = this.#config.units[name]!;
    const base = {
      bus: opts.bus,
      secrets: this.#secrets,
      holdRestart: (u: string) => this.#holdRestart(u),
      ...(opts.log ? { log: opts.log } : {}),
      ...(opts.random ? { random: opts.random } : {}),
    };
    switch (cfg.kind) {
      case 'process':
        return new ProcessUnit(cfg, {
          ...base,
          onChildStarted: (u, pid, startTime) => opts.store.childStarted({ unit: u, pid, startTime, startedAt: Date.now() }),
          onChildGone: (_u, pid) => opts.store.childGone(pid),
        });
      case 'task':
        return new TaskUnit(cfg, {
          ...base,
          root: this.#config.root,
          store: opts.store,
          rerun,
          // Only `once` dependencies say something by running: the others run every time.
          dependencyRan: () =>
            Object.keys(cfg.dependsOn).find((d) => {
              const dep = this.#units.get(d);
              return dep?.config.kind === 'task' && dep.config.once !== undefined && dep.state === 'completed';
            }),
        });
      case 'compose':
        return new ComposeUnit(cfg, { ...base, projects: this.#projects, root: this.#config.root });
    }
  }

  #indexDependents(): void {
    this.#dependents.clear();
    for (const name of this.#config.order) {
      for (const dep of Object.keys(this.#config.units[name]!.dependsOn)) {
        const list = this.#dependents.get(dep) ?? [];
        list.push(name);
        this.#dependents.set(dep, list);
      }
    }
  }

  unitNames(): readonly string[] {
    return this.config.order;
  }

  unit(name: string): UnitBase | undefined {
    return this.#units.get(name);
  }

  snapshot(opts: { processes?: boolean } = {}): UnitSnapshot[] {
    const all = opts.processes ? this.#recentScan() : undefined;
    return this.config.order.map((n) => {
      const unit = this.#units.get(n)!;
      const snap = unit.snapshot();
      const count = all && unit.processCount(all);
      if (count !== undefined) snap.processes = count;
      return snap;
    });
  }

  #scan: { at: number; all: ProcStat[] } | undefined;
  #recentScan(): ProcStat[] {
    const now = performance.now();
    if (!this.#scan || now - this.#scan.at > PROCESS_COUNT_MS) this.#scan = { at: now, all: listProcesses() };
    return this.#scan.all;
  }

  /** `up [units…]`: the named units (all enabled ones when none) and everything they depend on. */
  startAll(only: readonly string[] = []): ControlResult {
    const unknown = only.filter((n) => !this.#units.has(n));
    if (unknown.length) return this.#unknown(unknown[0]!);
    this.#wantAll = only.length === 0;
    const roots = only.length ? only : this.config.order;
    for (const n of roots) this.#want(n);
    this.#evaluate();
    return { ok: true };
  }

  start(name: string): ControlResult {
    const unit = this.#units.get(name);
    if (!unit) return this.#unknown(name);
    if (this.#shutdown) return { ok: false, status: 409, error: 'the supervisor is shutting down' };
    if (!unit.config.enabled) return { ok: false, status: 409, error: `unit "${name}" is disabled in the config (enabled: false)` };
    this.#want(name);
    this.#launched.delete(name);
    unit.clearCrashHistory();
    unit.setRestartNote(null);
    this.#evaluate();
    return { ok: true };
  }

  stop(name: string): ControlResult {
    const unit = this.#units.get(name);
    if (!unit) return this.#unknown(name);
    this.#wanted.delete(name);
    this.#launched.delete(name);
    unit.setRestartNote(null);
    void unit.stop('stop requested');
    return { ok: true };
  }

  restart(name: string): ControlResult {
    const unit = this.#units.get(name);
    if (!unit) return this.#unknown(name);
    if (this.#shutdown) return { ok: false, status: 409, error: 'the supervisor is shutting down' };
    if (!unit.config.enabled) return { ok: false, status: 409, error: `unit "${name}" is disabled in the config (enabled: false)` };
    this.#want(name);
    if (!this.#launched.has(name)) {
      this.#evaluate();
      return { ok: true };
    }
    unit.setRestartNote(null);
    void unit.restart('restart requested');
    return { ok: true };
  }

  /**
   * Watched files of `name` changed: restart it through its normal restart path, and with
   * `cascade` its dependents too — they stop first (dependents before what they need), and start
   * again through the ordinary start path once the unit meets their condition again.
   * A unit that is waiting, starting or in backoff is left alone: its coming start runs the
   * changed files, so a burst during startup never stacks restarts.
   */
  restartForChange(name: string, change: string, cascade: boolean): 'restarted' | 'deferred' | 'ignored' {
    const unit = this.#units.get(name);
    if (!unit || this.#shutdown || !this.#wanted.has(name) || !this.#launched.has(name)) return 'ignored';
    const note = `restarted: ${change}`;
    if (!['running', 'healthy', 'unhealthy', 'completed', 'skipped', 'failed'].includes(unit.state)) return 'deferred';
    const dependents = cascade ? this.#transitiveDependents(name).filter((d) => this.#launched.has(d) && !['stopped', 'disabled'].includes(this.#units.get(d)!.state)) : [];
    this.#cycling.add(name);
    for (const d of dependents) this.#launched.delete(d);
    void this.#stopDependentsFirst(dependents, (d) => {
      const u = this.#units.get(d);
      if (!u || this.#shutdown) return;
      u.setRestartNote(`${note} (cascade from ${name})`);
      return u.stop(`${note} (cascade from ${name})`);
    }).then(() => {
      if (this.#shutdown || this.#units.get(name) !== unit) {
        // Replaced by a reload meanwhile: the new unit starts on its own; nobody waits for this one.
        this.#cycling.delete(name);
        this.#scheduleEvaluate();
        return;
      }
      unit.setRestartNote(note);
      if (unit.state === 'failed') {
        // Gave up before the change (a crash loop the edit may fix): a fresh start, fresh budget.
        unit.clearCrashHistory();
        this.#launched.add(name);
        this.#cycling.delete(name);
        unit.start();
      } else {
        void unit.restart(note);
      }
    });
    return 'restarted';
  }

  /**
   * A reload: stop removed and changed units (dependents first), swap in the new config, and
   * let the ordinary start path start new and changed units after their dependencies. Units the
   * plan calls unchanged are not touched (same object, same pid). Dependents of a changed unit
   * follow their `onDependencyFailure` as when it restarts for any other reason.
   */
  async applyConfig(next: ResolvedConfig, plan: ReloadPlan): Promise<void> {
    if (this.#shutdown) return;
    const going = new Set([...plan.removed, ...plan.changed]);
    const rewant = plan.changed.filter((n) => this.#wanted.has(n));
    for (const n of going) {
      this.#wanted.delete(n);
      this.#launched.delete(n);
      this.#cycling.delete(n);
    }
    await this.#stopDependentsFirst([...going], (name) =>
      this.#units.get(name)?.stop(plan.removed.includes(name) ? 'removed from the config (reload)' : 'its config changed (reload)'),
    );
    if (this.#shutdown) return;
    this.#config = next;
    // In place: every unit, the supervisor log and the daemon's own messages share this list.
    this.#secrets.splice(0, this.#secrets.length, ...daemonSecrets(next));
    for (const n of plan.removed) this.#units.delete(n);
    for (const n of [...plan.changed, ...plan.added]) {
      this.#units.set(n, this.#createUnit(n, false));
      this.#units.get(n)!.setRestartNote('restarted: its config changed (reload)');
    }
    for (const n of plan.added) this.#units.get(n)!.setRestartNote('added by a reload');
    this.#indexDependents();
    for (const n of rewant) this.#want(n);
    if (this.#wantAll) for (const n of plan.added) this.#want(n);
    this.#evaluate();
  }

  /** Every unit that depends on `name`, directly or not, in dependency order. */
  #transitiveDependents(name: string): string[] {
    const seen = new Set<string>();
    const visit = (n: string): void => {
      for (const d of this.#dependents.get(n) ?? []) {
        if (seen.has(d)) continue;
        seen.add(d);
        visit(d);
      }
    };
    visit(name);
    return this.config.order.filter((n) => seen.has(n));
  }

  terminal(name: string): TerminalLookup {
    const unit = this.#units.get(name);
    if (!unit) return this.#unknown(name);
    if (!(unit instanceof ProcessUnit) || !unit.terminal) {
      return { ok: false, status: 409, error: `unit "${name}" does not run on a terminal: set tty: true on it (a process unit) in the config to attach to it` };
    }
    return { ok: true, terminal: unit.terminal };
  }

  /**
   * Stops every unit of `names`, each only once those of its dependents that are among `names`
   * have stopped (independent branches in parallel): shutdown, reload and watch cascades.
   */
  #stopDependentsFirst(names: readonly string[], stop: (name: string) => Promise<void> | undefined): Promise<void> {
    const among = new Set(names);
    const memo = new Map<string, Promise<void>>();
    const stopOne = (name: string): Promise<void> => {
      let p = memo.get(name);
      if (!p) {
        const after = (this.#dependents.get(name) ?? []).filter((d) => among.has(d));
        p = Promise.all(after.map(stopOne)).then(async () => {
          await stop(name);
        });
        memo.set(name, p);
      }
      return p;
    };
    return Promise.all(names.map(stopOne)).then(() => undefined);
  }

  shutdown(reason: string): Promise<void> {
    if (this.#shutdown) return this.#shutdown;
    this.#wanted.clear();
    this.#shutdown = this.#stopDependentsFirst(this.config.order, (name) => this.#units.get(name)!.stop(reason))
      .then(() => this.#projects.closeAll())
      // Shutdown is over when state.json says no child is left.
      .then(() => this.#store.settled())
      .then(() => this.#resolveStopped());
    return this.#shutdown;
  }

  isWanted(name: string): boolean {
    return this.#wanted.has(name);
  }

  get shuttingDown(): boolean {
    return this.#shutdown !== undefined;
  }

  #want(name: string): void {
    if (this.#wanted.has(name)) return;
    const cfg = this.config.units[name];
    if (!cfg || !cfg.enabled) return;
    this.#wanted.add(name);
    for (const dep of Object.keys(cfg.dependsOn)) this.#want(dep);
  }

  #unknown(name: string): { ok: false; status: 404; error: string } {
    return { ok: false, status: 404, error: `unknown unit "${name}" (known: ${this.config.order.join(', ')})` };
  }

  #scheduleEvaluate(): void {
    if (this.#evaluateQueued) return;
    this.#evaluateQueued = true;
    queueMicrotask(() => {
      this.#evaluateQueued = false;
      this.#evaluate();
    });
  }

  #evaluate(): void {
    if (this.#shutdown) return;
    for (const name of this.config.order) {
      if (!this.#wanted.has(name) || this.#launched.has(name)) continue;
      const unit = this.#units.get(name)!;
      // A unit still stopping comes back here through its `stopped` event.
      if (unit.state === 'stopping') continue;
      const waiting = this.#waitingOn(name);
      if (waiting) {
        unit.markPending(waiting);
        continue;
      }
      this.#launched.add(name);
      unit.start();
    }
  }

  /**
   * A dependency that dependents need `healthy` stopped being healthy, or became healthy again:
   * apply each dependent's `onDependencyFailure`. `restart` stops the dependent and un-launches
   * it, so the ordinary start path brings it back once the dependency is healthy again.
   */
  #propagate(dep: string, state: UnitStateName): void {
    if (this.#shutdown) return;
    const healthy = SATISFIES.healthy.includes(state);
    const down = !healthy && state !== 'pending' && state !== 'starting' && state !== 'running';
    if (!healthy && !down) return;
    for (const name of this.#dependents.get(dep) ?? []) {
      const cfg = this.config.units[name]!;
      if (cfg.dependsOn[dep] !== 'healthy' || !this.#launched.has(name)) continue;
      const unit = this.#units.get(name)!;
      // `stopping` too: a unit already on its way to a restart of its own (its probe noticed the
      // outage first) must not come back before the dependency does.
      const active = ['starting', 'running', 'healthy', 'unhealthy', 'backoff', 'stopping'].includes(unit.state);
      if (healthy) {
        unit.noteDependency(null);
        continue;
      }
      switch (cfg.onDependencyFailure) {
        case 'restart':
          if (!active) break;
          this.#launched.delete(name);
          void unit.stop(`dependency ${dep} is ${state}: stopped until it is healthy again (onDependencyFailure: restart)`);
          break;
        case 'wait':
          if (active) unit.noteDependency(`dependency ${dep} is ${state}`);
          break;
        case 'ignore':
          break;
      }
    }
  }

  /**
   * `dep` became healthy: the other dependencies its waiting dependents need healthy, still
   * before their first passing probe, probe now instead of at their next timer (each waits up to
   * ~2% of its start-up time between attempts, and a dependent waits for the last of them).
   */
  #hintCoDependencies(dep: string): void {
    if (this.#shutdown) return;
    const hinted = new Set<string>([dep]);
    for (const name of this.#dependents.get(dep) ?? []) {
      if (this.#launched.has(name) || !this.#wanted.has(name)) continue;
      for (const [other, cond] of Object.entries(this.config.units[name]!.dependsOn)) {
        if (cond !== 'healthy' || hinted.has(other)) continue;
        hinted.add(other);
        this.#units.get(other)?.hintReady();
      }
    }
  }

  /**
   * A unit's automatic restart is due. Unless it ignores its dependencies, it waits while one is
   * not met: restarting a listener while NATS is away only crashes it again until the crash-loop
   * budget declares it failed, an outage of someone else's making. Un-launched, it is started by
   * #evaluate like any waiting unit.
   */
  #holdRestart(name: string): string | undefined {
    if (this.#shutdown || this.config.units[name]?.onDependencyFailure === 'ignore') return undefined;
    const waiting = this.#waitingOn(name);
    if (waiting !== undefined) this.#launched.delete(name);
    return waiting;
  }

  /** Why `name` cannot start yet, or undefined when every dependency meets its condition. */
  #waitingOn(name: string): string | undefined {
    const cfg = this.config.units[name]!;
    const blocked: string[] = [];
    const waiting: string[] = [];
    for (const [dep, cond] of Object.entries(cfg.dependsOn)) {
      const unit = this.#units.get(dep);
      if (!unit || unit.state === 'disabled') continue;
      if (this.#cycling.has(dep)) {
        waiting.push(`${dep} (restarting)`);
        continue;
      }
      if (SATISFIES[cond].includes(unit.state) || tolerated(unit, cond)) continue;
      if (DEAD_END.includes(unit.state) && this.#launched.has(dep)) blocked.push(`${dep} ${unit.state}`);
      else waiting.push(`${dep} (${cond})`);
    }
    if (blocked.length) return `waiting: dependency ${blocked.join(', ')}`;
    if (waiting.length) return `waiting for ${waiting.join(', ')}`;
    return undefined;
  }
}
