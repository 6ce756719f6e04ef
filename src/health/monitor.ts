// Drives one probe on the healthcheck's timing and turns attempt results into health changes.
//
//            start()                     first pass
//    idle ───────────► starting ─────────────────────────────► healthy ◄──────┐
//                         │                                       │           │
//                         │ startPeriod ends                      │ `retries` │ a pass
//                         │ with no pass yet                      │ failures  │ (recovered)
//                         ▼                                       ▼ in a row  │
//                      unhealthy ◄────────────────────────────────┘           │
//                         └───────────────────────────────────────────────────┘
//    any state ── stop() ──► stopped   (no callback after this, late results ignored)
//
// - Attempts never overlap: attempt → wait intervalMs → attempt. Each attempt is bounded by
//   timeoutMs: the probe's AbortSignal fires then, and if the probe still has not settled
//   ABANDON_GRACE_MS later the attempt counts as failed anyway (a buggy probe cannot stall health).
// - Before the first pass nothing counts as a failure (the unit is still coming up and simply
//   gates its dependents); only `startPeriod`, when set, puts a bound on that.
// - After a pass, failures inside the start period still do not count.
// - onProgress gets every attempt result (pass or fail) so status can show `failing: <why>`.
// The clock and timers come from a Scheduler so all of this is tested without sleeping.

import type { ResolvedHealthcheck } from '../config/types.ts';
import { ProbeTimeoutError } from './abort.ts';
import { formatMs } from './duration.ts';
import type { Probe, ProbeResult } from './types.ts';

export type TimerHandle = unknown;

export interface Scheduler {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export type HealthTimingMs = Pick<ResolvedHealthcheck, 'intervalMs' | 'timeoutMs' | 'retries' | 'startPeriodMs'> & {
  /**
   * Before the first pass, the first wait between attempts; each following wait is
   * START_GROWTH times the previous one, up to intervalMs. Unset: intervalMs from the start.
   * A unit becomes healthy within ~2% of its start-up time after it is ready (3.4 ms for a 200 ms
   * start, 100 ms for 5 s), instead of up to a whole interval later, which every dependent
   * waits for, level after level. The price: ~235 attempts (from 1 ms) during a 5 s start instead
   * of 5; from 2 ms it was ~200, but 6 ms apart at 200 ms (a level of the bench's graph waited
   * 3.6 ms for its probes on average instead of 1.6: a simulation of both cadences).
   */
  startIntervalMs?: number;
};

/** Growth of the wait between attempts before the first pass (see startIntervalMs). */
export const START_GROWTH = 1.02;
/** poke() starts an attempt only this long after the previous one began. */
export const POKE_MIN_GAP_MS = 10;

export interface HealthCallbacks {
  /** First pass (recovered = false), or a pass after being unhealthy (recovered = true). */
  onHealthy?(info: { recovered: boolean; detail?: string }): void;
  /** `retries` failures in a row after a pass, or the start period ended without a pass. */
  onUnhealthy?(reason: string): void;
  /** Every attempt's result, before any onHealthy/onUnhealthy it causes. */
  onProgress?(result: ProbeResult): void;
  /** Every finished attempt's duration and outcome, first of all (metrics). */
  onAttempt?(attempt: { durationMs: number; ok: boolean }): void;
}

export type HealthMonitorState = 'idle' | 'starting' | 'healthy' | 'unhealthy' | 'stopped';

/** How long after the abort a probe may take to settle before its attempt is abandoned. */
export const ABANDON_GRACE_MS = 1000;

/**
 * A deadline timer that fires this much later than asked did not measure the probe: the daemon
 * itself was not running (a suspended laptop, SIGSTOP, a stalled machine), and so neither, most
 * likely, was the service. The attempt gets a fresh deadline from now instead of failing, so a
 * pause never counts as a failure (with retries: 1 it would restart the unit and its dependents).
 */
export const PAUSE_SLACK_MS = 1000;

type State =
  | { name: 'idle' }
  | { name: 'starting'; startedAt: number; startPeriodTimer: TimerHandle | undefined }
  | { name: 'healthy'; startedAt: number; failures: number }
  | { name: 'unhealthy'; startedAt: number }
  | { name: 'stopped' };

export class HealthMonitor {
  readonly #probe: Probe;
  readonly #timing: HealthTimingMs;
  readonly #callbacks: HealthCallbacks;
  readonly #scheduler: Scheduler;
  #state: State = { name: 'idle' };
  #lastResult: ProbeResult | undefined;
  #passedOnce = false;
  /** The next attempt's timer, or the running attempt's cancel; never both. */
  #nextTimer: TimerHandle | undefined;
  #inFlight: BoundedCheck | undefined;
  /** The next wait before the first pass (grows from startIntervalMs). */
  #startWait: number;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;

  /** The monitor owns the probe: stop() closes it. */
  constructor(probe: Probe, timing: HealthTimingMs, callbacks: HealthCallbacks = {}, scheduler: Scheduler = realScheduler) {
    this.#probe = probe;
    this.#timing = {
      intervalMs: Math.max(0, timing.intervalMs),
      timeoutMs: Math.max(1, timing.timeoutMs),
      retries: Math.max(1, Math.floor(timing.retries)),
      startPeriodMs: Math.max(0, timing.startPeriodMs),
    };
    if (timing.startIntervalMs !== undefined) this.#timing.startIntervalMs = Math.max(1, timing.startIntervalMs);
    this.#startWait = this.#timing.startIntervalMs ?? this.#timing.intervalMs;
    this.#callbacks = callbacks;
    this.#scheduler = scheduler;
  }

  get state(): HealthMonitorState {
    return this.#state.name;
  }

  get lastResult(): ProbeResult | undefined {
    return this.#lastResult;
  }

  get passedOnce(): boolean {
    return this.#passedOnce;
  }

  get label(): string {
    return this.#probe.label;
  }

  /** Starts probing at once. Calling it again (or after stop) does nothing. */
  start(): void {
    if (this.#state.name !== 'idle') return;
    const startedAt = this.#scheduler.now();
    const { startPeriodMs } = this.#timing;
    const startPeriodTimer = startPeriodMs > 0 ? this.#scheduler.setTimeout(() => this.#onStartPeriodEnd(), startPeriodMs) : undefined;
    this.#state = { name: 'starting', startedAt, startPeriodTimer };
    this.#runAttempt();
  }

  /** Stops probing, cancels the running attempt, closes the probe. Idempotent. */
  stop(): void {
    const prev = this.#state;
    if (prev.name === 'stopped') return;
    this.#state = { name: 'stopped' };
    if (prev.name === 'starting' && prev.startPeriodTimer !== undefined) this.#scheduler.clearTimeout(prev.startPeriodTimer);
    if (this.#nextTimer !== undefined) this.#scheduler.clearTimeout(this.#nextTimer);
    this.#nextTimer = undefined;
    this.#inFlight?.cancel('health monitor stopped');
    this.#inFlight = undefined;
    try {
      this.#probe.close?.();
    } catch {
      // Closing is best effort; the monitor is stopped either way.
    }
  }

  #runAttempt(): void {
    this.#nextTimer = undefined;
    if (this.#state.name === 'stopped') return;
    const run = boundedCheck(this.#probe, this.#timing.timeoutMs, this.#scheduler);
    const startedAt = this.#scheduler.now();
    this.#lastAttemptAt = startedAt;
    this.#inFlight = run;
    void run.result.then((result) => {
      // Stopped, or superseded: judged by the current state, a late result changes nothing.
      if (this.#inFlight !== run || this.#state.name === 'stopped') return;
      this.#inFlight = undefined;
      this.#callbacks.onAttempt?.({ durationMs: this.#scheduler.now() - startedAt, ok: result.ok });
      this.#nextTimer = this.#scheduler.setTimeout(() => this.#runAttempt(), this.#nextWait());
      this.#onResult(result);
    });
  }

  /** intervalMs, or before the first pass the growing start wait (at most intervalMs). */
  #nextWait(): number {
    const { intervalMs, startIntervalMs } = this.#timing;
    if (this.#passedOnce || startIntervalMs === undefined) return intervalMs;
    const wait = Math.min(intervalMs, Math.round(this.#startWait));
    this.#startWait = Math.min(intervalMs, this.#startWait * START_GROWTH);
    return wait;
  }

  /**
   * Something suggests the unit may have become ready (it printed a line, or a unit started with
   * it passed): before the first pass, attempt now instead of at the next timer, unless an attempt
   * is already running or one began less than `minGapMs` ago.
   */
  poke(minGapMs = POKE_MIN_GAP_MS): void {
    if (this.#state.name !== 'starting' || this.#inFlight !== undefined || this.#nextTimer === undefined) return;
    // A chatty unit must not turn this into back-to-back attempts.
    if (this.#scheduler.now() - this.#lastAttemptAt < minGapMs) return;
    this.#scheduler.clearTimeout(this.#nextTimer);
    this.#runAttempt();
  }

  #onResult(result: ProbeResult): void {
    this.#lastResult = result;
    this.#callbacks.onProgress?.(result);
    const state = this.#state; // re-read: onProgress may have stopped us
    switch (state.name) {
      case 'idle':
      case 'stopped':
        return;
      case 'starting':
        if (result.ok) {
          if (state.startPeriodTimer !== undefined) this.#scheduler.clearTimeout(state.startPeriodTimer);
          this.#enterHealthy(state.startedAt, false, result.detail);
        }
        return;
      case 'healthy':
        if (result.ok) {
          state.failures = 0;
          return;
        }
        if (this.#inStartPeriod(state.startedAt)) return;
        state.failures += 1;
        if (state.failures >= this.#timing.retries) this.#enterUnhealthy(state.startedAt, result.reason);
        return;
      case 'unhealthy':
        if (result.ok) this.#enterHealthy(state.startedAt, true, result.detail);
        return;
    }
  }

  #onStartPeriodEnd(): void {
    const state = this.#state;
    switch (state.name) {
      case 'starting': {
        const last = this.#lastResult;
        const why = last && !last.ok ? last.reason : 'the first attempt has not finished';
        this.#enterUnhealthy(state.startedAt, `no passing health check within startPeriod ${formatMs(this.#timing.startPeriodMs)}: ${why}`);
        return;
      }
      case 'idle':
      case 'healthy':
      case 'unhealthy':
      case 'stopped':
        return;
    }
  }

  #inStartPeriod(startedAt: number): boolean {
    return this.#timing.startPeriodMs > 0 && this.#scheduler.now() - startedAt < this.#timing.startPeriodMs;
  }

  #enterHealthy(startedAt: number, recovered: boolean, detail: string | undefined): void {
    this.#passedOnce = true;
    this.#state = { name: 'healthy', startedAt, failures: 0 };
    this.#callbacks.onHealthy?.(detail === undefined ? { recovered } : { recovered, detail });
  }

  #enterUnhealthy(startedAt: number, reason: string): void {
    this.#state = { name: 'unhealthy', startedAt };
    this.#callbacks.onUnhealthy?.(reason);
  }
}

interface BoundedCheck {
  result: Promise<ProbeResult>;
  /** Aborts the attempt; `result` resolves with a failure carrying `reason`. */
  cancel(reason: string): void;
}

/**
 * One attempt with a deadline: the signal aborts after timeoutMs, and the result is forced to a
 * failure ABANDON_GRACE_MS later if the probe ignores the abort. Never rejects: a probe that
 * throws (a bug) yields a failure that says so. Either timer, when it fires more than
 * PAUSE_SLACK_MS late, starts its wait again instead (the daemon was paused); a failure that
 * arrives more than PAUSE_SLACK_MS after the deadline (only a pause makes that possible) is
 * checked once more before it counts.
 */
function boundedCheck(probe: Probe, timeoutMs: number, scheduler: Scheduler): BoundedCheck {
  const controller = new AbortController();
  let settle!: (r: ProbeResult) => void;
  const result = new Promise<ProbeResult>((resolve) => (settle = resolve));
  let done = false;
  let abortTimer: TimerHandle;
  let graceTimer: TimerHandle | undefined;
  const finish = (r: ProbeResult): void => {
    if (done) return;
    done = true;
    scheduler.clearTimeout(abortTimer);
    if (graceTimer !== undefined) scheduler.clearTimeout(graceTimer);
    settle(r);
  };
  const armAbort = (): void => {
    const armedAt = scheduler.now();
    abortTimer = scheduler.setTimeout(() => {
      if (scheduler.now() - armedAt - timeoutMs > PAUSE_SLACK_MS) return armAbort();
      controller.abort(new ProbeTimeoutError(timeoutMs));
      const graceAt = scheduler.now();
      const abandon = (): void => {
        if (scheduler.now() - graceAt - ABANDON_GRACE_MS > PAUSE_SLACK_MS) {
          graceTimer = scheduler.setTimeout(abandon, ABANDON_GRACE_MS);
          return;
        }
        finish({ ok: false, reason: `${probe.label}: timed out after ${formatMs(timeoutMs)} (the probe did not stop when aborted)` });
      };
      graceTimer = scheduler.setTimeout(abandon, ABANDON_GRACE_MS);
    }, timeoutMs);
  };
  armAbort();
  const bug = (err: unknown): void => finish({ ok: false, reason: `${probe.label}: probe error: ${err instanceof Error ? err.message : String(err)}` });
  // A failure from an attempt that straddled a pause (the probe's own timers ran out during it,
  // e.g. a client's connect timeout) says nothing about the service: the probe runs once more.
  const startedAt = scheduler.now();
  let rerun = false;
  const judge = (r: ProbeResult): void => {
    if (r.ok || rerun || done || controller.signal.aborted || scheduler.now() - startedAt <= timeoutMs + PAUSE_SLACK_MS) return finish(r);
    rerun = true;
    run();
  };
  const run = (): void => {
    try {
      probe.check(controller.signal).then(judge, bug);
    } catch (err) {
      bug(err);
    }
  };
  run();
  return {
    result,
    cancel(reason) {
      finish({ ok: false, reason });
      controller.abort(new Error(reason));
    },
  };
}

/** One attempt, bounded by timeoutMs, for one-shot uses (a task's skipIf, `verify`). Never rejects. */
export function runProbeOnce(probe: Probe, timeoutMs: number, scheduler: Scheduler = realScheduler): Promise<ProbeResult> {
  return boundedCheck(probe, Math.max(1, timeoutMs), scheduler).result;
}
