// Restart decisions as pure maths: given how a run ended and when, say whether to restart,
// after how long, or to give up. The clock and the random source are passed in, so the
// backoff and the crash-loop window are tested without sleeping.

import type { ResolvedRestart } from './config/types.ts';

export interface RunOutcome {
  /** The run ended badly: non-zero exit, killed by a signal, or unhealthy. */
  failed: boolean;
  /** How long the run lasted (ms). */
  ranMs: number;
  /** When it ended (ms, from the injected clock). */
  now: number;
}

export type RestartDecision =
  | { action: 'restart'; delayMs: number; attempt: number }
  | { action: 'stop'; why: 'policy' }
  | { action: 'give-up'; why: string };

export class RestartBudget {
  readonly #cfg: ResolvedRestart;
  readonly #random: () => number;
  /** Restart times inside the sliding window. */
  #recent: number[] = [];
  /** Consecutive restarts since the last long-enough run; drives the exponent. */
  #attempt = 0;
  #total = 0;

  constructor(cfg: ResolvedRestart, random: () => number = Math.random) {
    this.#cfg = cfg;
    this.#random = random;
  }

  /** Restarts done so far (what `status` shows). */
  get total(): number {
    return this.#total;
  }

  decide(outcome: RunOutcome): RestartDecision {
    const { policy, windowMs, maxRestarts } = this.#cfg;
    if (policy === 'never' || (policy === 'on-failure' && !outcome.failed)) return { action: 'stop', why: 'policy' };
    // A run that stayed up longer than the window proves the unit can live: forget past crashes.
    if (outcome.ranMs > windowMs) {
      this.#recent = [];
      this.#attempt = 0;
    }
    this.#recent = this.#recent.filter((t) => outcome.now - t < windowMs);
    if (this.#recent.length >= maxRestarts) {
      return {
        action: 'give-up',
        why: `crash loop: ${this.#recent.length + 1} exits within ${formatMs(windowMs)} (restart.maxRestarts is ${maxRestarts})`,
      };
    }
    this.#recent.push(outcome.now);
    this.#attempt += 1;
    this.#total += 1;
    return { action: 'restart', delayMs: this.delayFor(this.#attempt), attempt: this.#attempt };
  }

  /**
   * Exponential backoff with symmetric jitter, clamped to [0, max]. The jitter applies to the
   * unclamped delay: jittering the clamped one would let the first delay at the cap come out
   * shorter than the one before it (27 s after 28.2 s with the defaults).
   */
  delayFor(attempt: number): number {
    const { initialMs, maxMs, factor, jitter } = this.#cfg;
    let base = initialMs * factor ** Math.max(0, attempt - 1);
    if (!Number.isFinite(base)) base = maxMs * 2;
    const spread = base * jitter * (2 * this.#random() - 1);
    return Math.max(0, Math.min(maxMs, Math.round(base + spread)));
  }

  /** A manual restart or start clears the crash history: the user asked for a fresh try. */
  reset(): void {
    this.#recent = [];
    this.#attempt = 0;
  }
}

function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
