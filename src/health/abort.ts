// Every probe must settle by the time its AbortSignal fires and say why it gave up. These helpers
// turn a signal's reason into that sentence and run one attempt's cleanup exactly once.

import { formatMs } from './duration.ts';
import type { ProbeResult } from './types.ts';

/** The abort reason the monitor uses: a deadline, with the bound in the message. */
export class ProbeTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${formatMs(timeoutMs)}`);
  }
}

/** `timed out after 5s`, `timed out` (AbortSignal.timeout) or the caller's own abort reason. */
export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof ProbeTimeoutError) return r.message;
  if (r instanceof Error) return r.name === 'TimeoutError' ? 'timed out' : r.message || 'aborted';
  if (typeof r === 'string' && r) return r;
  return 'aborted';
}

/** A failed result whose reason starts with what was probed: `tcp 127.0.0.1:5432: connection refused`. */
export function failure(prefix: string, why: string): ProbeResult {
  return { ok: false, reason: `${prefix}: ${why}` };
}

/**
 * The shape every probe attempt has: start some I/O, finish once with a result (from the I/O or
 * from the signal), and always release what the I/O opened. `finish` after the first is ignored,
 * so late events (a socket error after a timeout) cannot resolve twice; cleanups registered after
 * the finish run at once, so a connection that arrives late is still closed.
 */
export function attempt(
  signal: AbortSignal,
  prefix: string,
  body: (finish: (result: ProbeResult) => void, addCleanup: (fn: () => void) => void) => void | Promise<void>,
): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    const cleanups: (() => void)[] = [];
    let done = false;
    const runSafely = (fn: () => void): void => {
      try {
        fn();
      } catch {
        // Cleanup is best effort (a socket already destroyed); the result stands.
      }
    };
    const finish = (result: ProbeResult): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', abort);
      for (const fn of cleanups.splice(0)) runSafely(fn);
      resolve(result);
    };
    const abort = (): void => finish(failure(prefix, abortReason(signal)));
    const addCleanup = (fn: () => void): void => {
      if (done) runSafely(fn);
      else cleanups.push(fn);
    };
    if (signal.aborted) {
      abort();
      return;
    }
    signal.addEventListener('abort', abort, { once: true });
    const bug = (err: unknown): void => finish(failure(prefix, `probe error: ${err instanceof Error ? err.message : String(err)}`));
    try {
      const p = body(finish, addCleanup);
      if (p) p.catch(bug);
    } catch (err) {
      bug(err);
    }
  });
}
