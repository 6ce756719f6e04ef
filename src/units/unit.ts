// What every unit kind shares: its public view (the snapshot fields), publishing state events
// and log lines on the bus with a per-unit contiguous `seq`, and the last output lines kept
// for failure reasons. The per-kind state machines (process.ts, task.ts, compose.ts) own
// their private `#state` and call `publish` from their `#enterX` methods only.

import type { ResolvedUnit, UnitKind } from '../config/types.ts';
import { type EventBus, type LogStream, RawBatch, type StateEvent, type UnitStateName } from '../events.ts';
import { detach, LineSplitter, type RawLines } from '../logs/line-splitter.ts';
import { RestartBudget, type RestartDecision } from '../restart-policy.ts';
import type { ProcStat } from '../util/proc.ts';
import { readBytes } from '../util/gc-pacer.ts';
import { redactText } from '../util/redact.ts';
import { unitSecrets } from '../util/secrets.ts';
import type { UnitSnapshot } from './types.ts';

const TAIL_LINES = 20;
/** States that show why the run began (a watched change, a reload) when they have no reason of their own. */
const NOTED_STATES: ReadonlySet<UnitStateName> = new Set(['starting', 'running', 'healthy']);

export interface UnitDeps {
  bus: EventBus;
  /** Jitter source for the restart backoff (tests pin it). */
  random?: () => number;
  /**
   * Values to mask in this unit's output, reasons and events (default: the unit's own, see
   * util/secrets.ts). The supervisor passes the whole stack's: a child may print another
   * unit's password.
   */
  secrets?: readonly string[];
  /**
   * An automatic restart is due: why it must wait instead (a dependency it needs is down, so the
   * new run would only fail and spend the crash budget), or undefined to go ahead. A held unit
   * becomes `pending` with that reason and is started by the supervisor once it may.
   */
  holdRestart?: (unit: string) => string | undefined;
  /** Called for anything the supervisor log should record beyond state events. */
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

/** What pipeStream reads: a child's pipe, or a PTY's output (src/units/pty.ts). */
export interface ByteStream {
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  once(event: 'end' | 'error', fn: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

export interface StateExtras {
  pid?: number | null;
  exitCode?: number | null;
  signal?: string | null;
  reason?: string | null;
}

export abstract class UnitBase {
  readonly name: string;
  abstract readonly kind: UnitKind;
  protected readonly bus: EventBus;
  protected readonly deps: UnitDeps;
  readonly #secrets: readonly string[];

  #stateName: UnitStateName = 'stopped';
  #since = Date.now();
  #pid: number | null = null;
  #exitCode: number | null = null;
  #reason: string | null = null;
  protected health: string | null = null;
  protected restarts = 0;
  protected adopted = false;

  readonly #budget: RestartBudget;

  #seq = 0;
  readonly #tail: string[] = [];
  /**
   * The newest raw batch, not yet decoded into #tail: only read when someone asks for the last
   * lines, and a batch of TAIL_LINES or more replaces it undecoded (a flood decodes nothing).
   */
  #tailRaw: RawLines | undefined;
  /** `onDependencyFailure: 'wait'`: a dependency is down while this unit keeps running. */
  #dependencyNote: string | null = null;
  /** Why the current run exists (`restarted: server/x.py changed`); shown until a failure or a user's command. */
  #restartNote: string | null = null;

  constructor(config: ResolvedUnit, deps: UnitDeps) {
    this.name = config.name;
    this.bus = deps.bus;
    this.deps = deps;
    this.#budget = new RestartBudget(config.restart, deps.random);
    // The child inherits the daemon's environment too, and probe/task URLs carry passwords.
    this.#secrets = deps.secrets ?? unitSecrets(config);
    if (!config.enabled) this.#stateName = 'disabled';
  }

  get state(): UnitStateName {
    return this.#stateName;
  }

  get pid(): number | null {
    return this.#pid;
  }

  get lastSeq(): number {
    return this.#seq;
  }

  abstract readonly config: ResolvedUnit;

  /** Start (or start again) now; dependencies were already judged by the supervisor. */
  abstract start(): void;
  /** Stop and stay stopped. Resolves when nothing of the unit runs any more. */
  abstract stop(reason: string): Promise<void>;
  /** Stop, then start again immediately (a user's explicit request: clears crash history). */
  abstract restart(reason: string): Promise<void>;

  /** A user's start or restart: the crash history no longer counts against the unit. */
  clearCrashHistory(): void {
    this.#budget.reset();
  }

  /** How a run ended → restart after a delay, stop, or give up; keeps `restarts` current. */
  protected decideRestart(failed: boolean, ranMs: number): RestartDecision {
    const decision = this.#budget.decide({ failed, ranMs, now: Date.now() });
    this.restarts = this.#budget.total;
    return decision;
  }

  /** The supervisor holds the unit back: dependencies not met yet. */
  markPending(reason: string): void {
    if (this.#stateName === 'pending' && this.#reason === reason) return;
    this.publish('pending', { reason, pid: null });
  }

  /** Sets (or clears) why the unit is being restarted; the coming start states carry it as their reason. */
  setRestartNote(note: string | null): void {
    this.#restartNote = note;
  }

  /** Notes (or clears, with null) that a dependency is down while this unit keeps running. */
  noteDependency(note: string | null): void {
    if (note === this.#dependencyNote) return;
    this.#dependencyNote = note;
    this.system(note ?? 'dependencies healthy again');
  }

  snapshot(): UnitSnapshot {
    return {
      name: this.name,
      kind: this.kind,
      state: this.#stateName,
      pid: this.#pid,
      restarts: this.restarts,
      health: this.health === null ? null : this.redact(this.health),
      since: this.#since,
      exitCode: this.#exitCode,
      reason: this.#reason !== null ? this.redact(this.#reason) : this.#dependencyNote,
      dependsOn: { ...this.config.dependsOn },
      ...(this.adopted ? { adopted: true } : {}),
      ...(this.config.kind === 'task' && this.config.optional ? { optional: true } : {}),
    };
  }

  /** Live processes of this unit among `all` (one /proc scan shared by every unit); undefined: not ours to count (compose). */
  processCount(_all: ProcStat[]): number | undefined {
    return undefined;
  }

  /** Last lines of output, newest last (for failure reasons). */
  lastOutput(n = 5): string[] {
    this.#settleTail();
    return this.#tail.slice(-n);
  }

  protected redact(text: string): string {
    return redactText(text, this.#secrets);
  }

  protected publish(state: UnitStateName, extras: StateExtras = {}): void {
    const prev = this.#stateName;
    this.#stateName = state;
    this.#since = Date.now();
    if (extras.pid !== undefined) this.#pid = extras.pid;
    if (extras.exitCode !== undefined) this.#exitCode = extras.exitCode;
    if (state === 'failed' || state === 'backoff' || state === 'unhealthy') this.#restartNote = null;
    this.#reason = extras.reason ?? (NOTED_STATES.has(state) ? this.#restartNote : null);
    const event: StateEvent = { type: 'state', unit: this.name, kind: this.kind, state, prev, ts: this.#since };
    if (this.#pid !== null) event.pid = this.#pid;
    if (extras.exitCode !== undefined) event.exitCode = extras.exitCode;
    if (extras.signal !== undefined) event.signal = extras.signal;
    if (this.#reason !== null) event.reason = this.redact(this.#reason);
    this.bus.publishEvent(event);
    this.#echoState(event);
  }

  /** The unit's own log (file, ring, WebSocket) records its state changes too. */
  #echoState(e: StateEvent): void {
    const details: string[] = [];
    if (e.pid !== undefined) details.push(`pid ${e.pid}`);
    if (e.exitCode !== undefined && e.exitCode !== null) details.push(`exit code ${e.exitCode}`);
    if (e.signal) details.push(`signal ${e.signal}`);
    let text = `● ${e.state}`;
    if (details.length) text += ` (${details.join(', ')})`;
    if (e.reason) text += `: ${e.reason}`;
    const lines = text.split('\n');
    const firstSeq = this.#seq + 1;
    this.#seq += lines.length;
    this.bus.publishLogs({ unit: this.name, stream: 'system', firstSeq, ts: e.ts, lines, stateEcho: true });
  }

  /** Lines of one chunk, published as one batch. */
  protected emitLines(stream: LogStream, lines: string[]): void {
    if (lines.length === 0) return;
    // A child that prints its own DSN or password must not put it into files and clients.
    // Only units with secrets (in their env or config) pay for this scan.
    if (this.#secrets.length && stream !== 'system') maskSecrets(lines, presentIn(lines, this.#secrets));
    this.#publishLines(stream, lines);
  }

  #publishLines(stream: LogStream, lines: string[]): void {
    const firstSeq = this.#seq + 1;
    this.#seq += lines.length;
    if (stream !== 'system') {
      this.#settleTail();
      this.#keepTail(lines.length > TAIL_LINES ? lines.slice(-TAIL_LINES) : lines);
    }
    this.bus.publishLogs({ unit: this.name, stream, firstSeq, ts: Date.now(), lines });
  }

  /** A chunk's lines as read (see LineSplitter.pushRaw), published as one batch. */
  #emitRaw(stream: 'stdout' | 'stderr', raw: RawLines): void {
    if (this.#secrets.length) {
      // Searched in the bytes: only a batch that holds a secret is turned into strings.
      const present = this.#secrets.filter((s) => raw.includes(s));
      if (present.length > 0) {
        const lines = raw.lines.slice();
        maskSecrets(lines, present);
        this.#publishLines(stream, lines);
        return;
      }
    }
    const firstSeq = this.#seq + 1;
    this.#seq += raw.count;
    if (raw.count < TAIL_LINES) this.#settleTail();
    this.#tailRaw = raw;
    this.bus.publishLogs(new RawBatch(this.name, stream, firstSeq, Date.now(), raw));
  }

  #settleTail(): void {
    const raw = this.#tailRaw;
    if (raw === undefined) return;
    this.#tailRaw = undefined;
    this.#keepTail(raw.lastLines(TAIL_LINES));
  }

  #keepTail(lines: readonly string[]): void {
    for (const line of lines) this.#tail.push(detach(line));
    if (this.#tail.length > TAIL_LINES * 2) this.#tail.splice(0, this.#tail.length - TAIL_LINES);
  }

  /** A line from the supervisor about this unit in its own log (file, ring, clients). */
  note(line: string): void {
    this.system(line);
  }

  /** A line from the supervisor about this unit, written into its log stream. */
  protected system(line: string): void {
    this.emitLines('system', [this.redact(line)]);
  }

  /** Wires a readable pipe (or a terminal's output) through a line splitter into the bus; resolves at end of stream. */
  protected pipeStream(stream: ByteStream | null, name: 'stdout' | 'stderr'): Promise<void> {
    if (!stream) return Promise.resolve();
    const splitter = new LineSplitter();
    return new Promise((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        const got = splitter.pushRaw(chunk);
        if (Array.isArray(got)) this.emitLines(name, got);
        else this.#emitRaw(name, got);
        readBytes(chunk.length);
        // The disk is behind: stop reading until it catches up, so the child (blocked on a full
        // pipe) waits instead of its lines being dropped. Never set while writes are failing.
        const wait = this.bus.logBackpressure?.(this.name);
        if (wait) {
          stream.pause();
          void wait.then(() => stream.resume());
        }
      });
      const finish = (): void => {
        this.emitLines(name, splitter.end());
        resolve();
      };
      stream.once('end', finish);
      stream.once('error', finish);
    });
  }

  protected tailReason(prefix: string): string {
    const out = this.lastOutput(5);
    return out.length ? `${prefix}; last output:\n  ${out.join('\n  ')}` : prefix;
  }
}

/**
 * The secrets that may occur in a batch, judged on its joined text (one native search a secret
 * for the whole batch) instead of every line: the stack's list of secrets is shared by every
 * unit, and almost no batch holds one.
 */
function presentIn(lines: readonly string[], secrets: readonly string[]): readonly string[] {
  if (lines.length < 2) return secrets;
  const text = lines.join('\n');
  return secrets.filter((s) => text.includes(s));
}

/** Masks in place. */
function maskSecrets(lines: string[], secrets: readonly string[]): void {
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    for (const secret of secrets) {
      if (line.includes(secret)) {
        line = line.split(secret).join('***');
      }
    }
    lines[i] = line;
  }
}
