// Notices that the daemon itself stopped running for a while: a suspended laptop, SIGSTOP, a
// machine stalled by swapping. Everything timed — probe deadlines, backoff — jumps ahead at once
// when it wakes; the health monitor already forgives the deadlines (PAUSE_SLACK_MS), and this
// tells the user why nothing was restarted although the clock moved on.
//
// One unref'd timer a few seconds apart: a tick that arrives much later than asked is the pause.

export interface PauseWatchOptions {
  /** How often the timer ticks (default 2 s). */
  everyMs?: number;
  /** A tick this much late is reported (default 2 s). */
  minPauseMs?: number;
  now?: () => number;
}

/** Calls onPause(ms) after each pause of the daemon; returns the function that stops watching. */
export function watchPauses(onPause: (pausedMs: number) => void, opts: PauseWatchOptions = {}): () => void {
  const everyMs = opts.everyMs ?? 2000;
  const minPauseMs = opts.minPauseMs ?? 2000;
  const now = opts.now ?? Date.now;
  let last = now();
  const timer = setInterval(() => {
    const t = now();
    const late = t - last - everyMs;
    last = t;
    if (late >= minPauseMs) onPause(late);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
