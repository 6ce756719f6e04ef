// Running the docker / docker-compose CLIs as child processes.
//
// Every child is spawned `detached` (its own process group) for two reasons: Ctrl-C in the
// supervisor's terminal is delivered to the whole foreground process group, and a `compose stop`
// that is still running during shutdown must not be interrupted by it; and killing the group
// takes down anything the CLI itself started. Children are killed with SIGTERM to the group,
// then SIGKILL after a grace period.

import { spawn, type ChildProcess } from 'node:child_process';

export interface RunOptions {
  cwd?: string;
  /** Full environment of the child (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Kill the child after this long (default: no limit). */
  timeoutMs?: number;
  /** Aborting kills the child. */
  signal?: AbortSignal;
  /** Keep at most this many bytes of each output (the tail; default 256 KiB). */
  maxOutputBytes?: number;
  /** Called with the child once spawned (for bookkeeping of live children). */
  onSpawn?: (child: ChildProcess) => void;
  /** Every chunk of output as it arrives (progress of a long command, e.g. a pull). */
  onOutput?: (chunk: Buffer) => void;
}

export interface RunResult {
  /** Exit code, null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved in arrival order (what a user would have seen). */
  output: string;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the program could not be started at all (e.g. `ENOENT`). */
  spawnError: NodeJS.ErrnoException | undefined;
}

const KILL_GRACE_MS = 3_000;

/** Sends `sig` to the child's whole process group; falls back to the child alone. */
export function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/**
 * SIGTERM to the group, SIGKILL after `graceMs` if it has not exited. Resolves once the child
 * has exited and its pipes are closed (at once if it already had).
 */
export function terminate(child: ChildProcess, graceMs = KILL_GRACE_MS): Promise<void> {
  // Exited long ago: its group id may belong to someone else by now, so nothing is sent.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    child.once('close', () => {
      clearTimeout(timer);
      // The CLI is gone; anything it left in its group (the v2 compose plugin is a child of
      // the docker CLI) goes too. Right after the exit, the group id cannot have been reused.
      killGroup(child, 'SIGKILL');
      resolve();
    });
    killGroup(child, 'SIGTERM');
  });
}

/** Spawns a long-lived child in its own process group, stdin closed. */
export function spawnDetached(argv: readonly string[], opts: { cwd?: string; env?: Readonly<Record<string, string | undefined>> }): ChildProcess {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new TypeError('spawnDetached: empty argv');
  return spawn(cmd, args, {
    cwd: opts.cwd,
    env: (opts.env ?? process.env) as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

/** Bounded tail buffer: keeps the last `max` bytes of what was pushed. */
class TailBuffer {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  constructor(readonly max: number) {}
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > this.max && this.#chunks.length > 1) this.#size -= this.#chunks.shift()!.length;
  }
  toString(): string {
    const all = Buffer.concat(this.#chunks);
    return (all.length > this.max ? all.subarray(all.length - this.max) : all).toString('utf8');
  }
}

/** Runs a command to completion. Never throws for expected failures: they are in the result. */
export function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const max = opts.maxOutputBytes ?? 256 * 1024;
  const stdout = new TailBuffer(max);
  const stderr = new TailBuffer(max);
  const output = new TailBuffer(max);
  return new Promise((resolve) => {
    let timedOut = false;
    let aborted = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({
        code,
        signal,
        stdout: stdout.toString(),
        stderr: stderr.toString(),
        output: output.toString(),
        timedOut,
        aborted,
        spawnError,
      });
    };
    if (opts.signal?.aborted) {
      aborted = true;
      finish(null, null);
      return;
    }
    let child: ChildProcess;
    try {
      child = spawnDetached(argv, opts);
    } catch (err) {
      spawnError = err as NodeJS.ErrnoException;
      finish(null, null);
      return;
    }
    const onAbort = (): void => {
      aborted = true;
      void terminate(child);
    };
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            void terminate(child);
          }, opts.timeoutMs)
        : undefined;
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (c: Buffer) => {
      stdout.push(c);
      output.push(c);
      opts.onOutput?.(c);
    });
    child.stderr!.on('data', (c: Buffer) => {
      stderr.push(c);
      output.push(c);
      opts.onOutput?.(c);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      // 'error' without a pid means spawn failed; 'close' still follows in that case.
      if (child.pid === undefined) spawnError = err;
    });
    child.once('close', (code, signal) => finish(spawnError ? null : code, signal));
    if (child.pid !== undefined) opts.onSpawn?.(child);
  });
}

/** `argv` as a shell-like string for messages. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The most useful line of a CLI's error output: the first that looks like an error, else the last non-empty one. */
export function errorLine(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const err = lines.find((l) => /error|cannot|can't|couldn't|no such|not found|denied|invalid|unknown/i.test(l));
  return err ?? lines[lines.length - 1] ?? '';
}
