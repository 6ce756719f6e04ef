// A child's pipe is read into a fresh 64 KiB buffer per read, memory outside V8's heap that is
// only given back when a garbage collection finds the buffer dead. The log path makes almost
// no heap garbage of its own (lines travel as bytes, src/logs/line-splitter.ts), so young-
// generation collections became rare and dead read buffers piled up between them: +16-18 MiB of
// peak RSS under a noisy child. With `--expose-gc` (bin/bksup gives it to `up`), a minor
// collection is asked for every PACE_BYTES read: it finds little alive, costs ~0.1-0.3 ms (~50 per
// 50 MB read), and frees the buffers read since the last one (peak RSS back to where it was). Without
// it (tests, other entry points): nothing.

const PACE_BYTES = 1024 * 1024;

type Gc = (opts: { type: 'minor' | 'major' }) => void;
const gc = (globalThis as { gc?: Gc }).gc;
let sinceLast = 0;

/** Counts bytes read from a child's pipe; asks for a minor GC every PACE_BYTES. */
export function readBytes(n: number): void {
  if (gc === undefined) return;
  sinceLast += n;
  if (sinceLast < PACE_BYTES) return;
  sinceLast = 0;
  gc({ type: 'minor' });
}
