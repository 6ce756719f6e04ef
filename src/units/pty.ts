// Starting a child on a pseudo-terminal (`tty: true`), through node-pty.
//
// What differs from spawnChild (src/units/child.ts), and why it still fits the rest:
// - node-pty's fork calls setsid() and makes the terminal the child's controlling terminal, so
//   the child leads its own session and process group (ids = its pid), exactly as with
//   `detached: true`: stopTree's kill(-pgid) and the session scan work unchanged.
// - The command runs behind the same setpriv parent-death signal (argvFor); node-pty forks from
//   the daemon's main thread, so "parent died" means the daemon died. It carries the unit's mark
//   (envFor) like a piped child, so the sweeps find what it detaches.
// - stdout and stderr are one stream (the terminal): it is logged as stdout. Bytes, not
//   strings (`encoding: null`), as the pipe path reads them.
// - node-pty reaps the child itself (a waitpid thread) and reports the exit once the terminal's
//   output was read to its end, or 200 ms after the exit when a grandchild still holds it open.
//
// node-pty is a native addon (an optional dependency, built by `npm ci`): it is loaded with the
// first tty unit, and a checkout where it did not build gets a reason naming the fix.

import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { argvFor, envFor, type ChildExit, type SpawnSpec } from './child.ts';

/** The part of node-pty's IPty used here (its typings say strings; `encoding: null` gives Buffers). */
interface NodePty {
  readonly pid: number;
  onData(fn: (data: Buffer | string) => void): unknown;
  onExit(fn: (e: { exitCode: number; signal?: number }) => void): unknown;
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
}

interface NodePtyModule {
  spawn(file: string, args: string[], opts: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string>; encoding: null }): NodePty;
}

export interface TerminalSize {
  cols: number;
  rows: number;
}

/**
 * The terminal's output as a byte stream ('data' Buffers, then 'end' once the child exited and
 * the output was read), shaped like the readable side of a pipe so UnitBase.pipeStream logs it
 * with the same splitter and backpressure.
 */
export class PtyOutput extends EventEmitter {
  readonly #pty: NodePty;
  constructor(pty: NodePty) {
    super();
    this.#pty = pty;
  }
  pause(): this {
    this.#pty.pause();
    return this;
  }
  resume(): this {
    this.#pty.resume();
    return this;
  }
}

/** A child running on a pseudo-terminal. */
export interface PtyChild {
  readonly pid: number;
  readonly output: PtyOutput;
  readonly exited: Promise<ChildExit>;
  /** Keyboard input: bytes as a terminal sends them (Ctrl-C is 0x03 and so on). */
  write(data: Buffer): void;
  resize(size: TerminalSize): void;
}

export type PtySpawnResult = { ok: true; child: PtyChild } | { ok: false; reason: string };

let loaded: { ok: true; mod: NodePtyModule } | { ok: false; reason: string } | undefined;

/** Loads node-pty once; a failure is kept as a reason fit for the user. */
export function loadNodePty(): { ok: true; mod: NodePtyModule } | { ok: false; reason: string } {
  if (!loaded) {
    try {
      loaded = { ok: true, mod: createRequire(import.meta.url)('node-pty') as NodePtyModule };
    } catch (err) {
      const why = (err as Error).message.split('\n')[0] ?? String(err);
      loaded = {
        ok: false,
        reason: `tty: true needs the node-pty package, which is missing or did not build (${why}); run npm ci with a C++ compiler, make and python3 present (offline: npm_config_nodedir=/usr npm ci, to use the system's Node headers)`,
      };
    }
  }
  return loaded;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

export function spawnPty(spec: SpawnSpec, size: TerminalSize): PtySpawnResult {
  if (!existsSync(spec.cwd)) return { ok: false, reason: `working directory ${spec.cwd} does not exist` };
  const lib = loadNodePty();
  if (!lib.ok) return lib;
  const [file, ...args] = argvFor(spec.command);
  if (!file) return { ok: false, reason: 'empty command' };
  let pty: NodePty;
  try {
    pty = lib.mod.spawn(file, args, { name: spec.env.TERM ?? 'xterm-256color', cols: size.cols, rows: size.rows, cwd: spec.cwd, env: { ...envFor(spec) }, encoding: null });
  } catch (err) {
    return { ok: false, reason: `could not start on a terminal: ${(err as Error).message}` };
  }
  const output = new PtyOutput(pty);
  pty.onData((data) => output.emit('data', typeof data === 'string' ? Buffer.from(data) : data));
  const exited = new Promise<ChildExit>((resolve) => {
    pty.onExit(({ exitCode, signal }) => {
      output.emit('end');
      // node-pty reports a signal as its number (0: none), and a signalled child's code as 0.
      const name = signal ? SIGNAL_NAMES.get(signal) : undefined;
      resolve(name ? { code: null, signal: name } : { code: exitCode, signal: null });
    });
  });
  return {
    ok: true,
    child: {
      pid: pty.pid,
      output,
      exited,
      write: (data) => pty.write(data),
      resize: ({ cols, rows }) => {
        try {
          pty.resize(cols, rows);
        } catch {
          // The terminal is already closed (the child just exited): nothing to resize.
        }
      },
    },
  };
}
