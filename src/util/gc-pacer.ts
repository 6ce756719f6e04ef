// A child's pipe is read into a fresh 64 KiB buffer per read, memory outside V8's heap that is
// only given back when a garbage collection finds the buffer dead. The log path makes almost
// no heap garbage of its own (lines travel as bytes, src/logs/line-splitter.ts), so young-
// generation collections became rare and dead read buffers piled up between them: +16-18 MiB of
// peak RSS under a noisy child. So a minor collection is asked for every PACE_BYTES read: it
// finds little alive, costs ~0.1-0.3 ms (~50 per 50 MB read), and frees the buffers read since
// the last one (peak RSS back to where it was).
//
// V8 hands out its `gc` function only when --expose-gc was set before a context is made: the
// flag is set on first use and `gc` taken from a new context (so no launcher flag is needed and
// every entry point, tests included, behaves alike). If that ever fails: no pacing.

import * as v8 from 'node:v8';
import * as vm from 'node:vm';

const PACE_BYTES = 1024 * 1024;

type Gc = (opts: { type: 'minor' | 'major' }) => void;
let gc: Gc | null | undefined;
let sinceLast = 0;

/** Counts bytes read from a child's pipe; asks for a minor GC every PACE_BYTES. */
export function readBytes(n: number): void {
  sinceLast += n;
  if (sinceLast < PACE_BYTES) return;
  sinceLast = 0;
  gc ??= findGc();
  gc?.({ type: 'minor' });
}

function findGc(): Gc | null {
  const exposed = (globalThis as { gc?: Gc }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn: unknown = vm.runInNewContext('gc');
    return typeof fn === 'function' ? (fn as Gc) : null;
  } catch {
    return null;
  }
}
