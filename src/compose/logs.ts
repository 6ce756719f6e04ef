// Following a container's output with `docker logs -f`. For containers without a TTY the CLI
// writes the container's stdout to its stdout and the container's stderr to its stderr, so the
// two streams stay apart for free. Chunks are handed on as they arrive (this is the log hot
// path: no per-line work here; the unit's LineSplitter does that).

import type { ChildProcess } from 'node:child_process';
import { errorLine, spawnDetached, terminate } from './exec.ts';

export interface FollowLogsOptions {
  /** Only output after this point: ms since epoch, or any form `docker logs --since` takes (RFC 3339, `10m`). */
  since?: number | string;
  /** Only the last N lines of earlier output (`--tail`). */
  tail?: number;
}

export interface LogsEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** true when close() ended it (rather than the container stopping or an error). */
  closed: boolean;
  /** Why the CLI failed, when it did (`No such container: …`, docker not found). */
  error: string | undefined;
}

export interface LogFollower {
  /** pid of the `docker logs` process (the leader of its own process group). */
  readonly pid: number | undefined;
  /** Resolves with the same value onEnd receives. */
  readonly done: Promise<LogsEnd>;
  /** Kills the `docker logs` process; resolves once it is gone. */
  close(): Promise<void>;
}

/** `1700000000123` (ms) → `'1700000000.123'`. */
export function msToSince(ms: number): string {
  const whole = Math.floor(ms);
  return `${Math.floor(whole / 1000)}.${String(whole % 1000).padStart(3, '0')}`;
}

export function followContainerLogs(
  opts: { docker: string; env: Readonly<Record<string, string | undefined>>; id: string } & FollowLogsOptions,
  onChunk: (stream: 'stdout' | 'stderr', chunk: Buffer) => void,
  onEnd: (end: LogsEnd) => void,
): LogFollower {
  const args = [opts.docker, 'logs', '--follow'];
  if (opts.since !== undefined) args.push('--since', typeof opts.since === 'number' ? msToSince(opts.since) : opts.since);
  if (opts.tail !== undefined) args.push('--tail', String(opts.tail));
  args.push(opts.id);

  let closed = false;
  let spawnError: string | undefined;
  // The CLI's own complaints come on stderr too; remembered briefly to explain a failed exit.
  let stderrTail = '';
  let resolveDone!: (end: LogsEnd) => void;
  const done = new Promise<LogsEnd>((r) => (resolveDone = r));
  const finish = (end: LogsEnd): void => {
    resolveDone(end);
    onEnd(end);
  };

  let child: ChildProcess;
  try {
    child = spawnDetached(args, { env: opts.env });
  } catch (err) {
    const end: LogsEnd = { code: null, signal: null, closed: false, error: (err as Error).message };
    queueMicrotask(() => finish(end));
    return { pid: undefined, done, close: () => done.then(() => undefined) };
  }
  child.stdout!.on('data', (c: Buffer) => onChunk('stdout', c));
  child.stderr!.on('data', (c: Buffer) => {
    if (stderrTail.length < 2048) stderrTail += c.toString('utf8', 0, Math.min(c.length, 2048));
    onChunk('stderr', c);
  });
  child.once('error', (err: NodeJS.ErrnoException) => {
    if (child.pid === undefined) spawnError = err.code === 'ENOENT' ? `${opts.docker} not found on PATH` : err.message;
  });
  child.once('close', (code, signal) => {
    const error = spawnError ?? (code !== 0 && !closed ? errorLine(stderrTail) || `exit code ${code}` : undefined);
    finish({ code: spawnError ? null : code, signal, closed, error });
  });
  return {
    pid: child.pid,
    done,
    async close() {
      closed = true;
      await terminate(child);
      await done;
    },
  };
}
