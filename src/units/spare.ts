// A child started in advance for a unit that is about to start: a unit waiting for its
// dependencies, or one that crashed and will be restarted. The fork of the daemon (~1.5-3 ms
// of a 55 MiB Node process, synchronous) and the exec chain setpriv → sh happen while nothing
// waits for them; starting the unit is then one write to the spare's stdin, after which it
// execs the unit's command with the same pid, session, pipes and parent-death signal.
//
//   prepareSpare(spec)  ── spawn (as spawnChild would: own session, stdout/stderr pipes, the
//        │                 unit's env + mark and cwd, setpriv --pdeathsig) of a shell that waits on stdin
//        ▼
//   launchSpare(spare, command) ── writes the command, shell-quoted, after its line count, and closes stdin:
//        │                 the shell reads it (builtins only), points stdin at /dev/null and
//        ▼                 `exec`s it: the unit runs as the spare's pid, exactly as if spawned
//   discardSpare(spare) ── unused (unit stopped, daemon shutting down): SIGKILL to its group
//
// The spare carries no part of the command in its argv until it execs (nothing that looks like
// the unit shows up in `ps` twice), and it dies with the daemon (pdeathsig, or EOF on stdin).
// A command whose program cannot be found is never given to a spare: spawnChild reports it.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolveProgram } from '../preflight.ts';
import { argvFor, baseArgv, envFor, type SpawnResult, type SpawnSpec } from './child.ts';

export interface Spare {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The env and cwd it was started with: it can only become a unit with the same ones. */
  readonly spec: Pick<SpawnSpec, 'cwd' | 'env'>;
  /** Its BKSUP_UNIT, which the unit it becomes keeps (src/units/marker.ts). */
  readonly marker: string | undefined;
  /** It exited (or failed) before it was used. */
  dead: boolean;
}

// Reads a line count, then that many lines (the quoted words; a word may span lines), then
// runs them as `exec <words>`, all with dash builtins (no fork). EOF first: exits quietly.
const SPARE_SCRIPT = [
  'IFS= read -r n || exit 0',
  'c=; i=0',
  'while [ "$i" -lt "$n" ] && IFS= read -r l; do c="$c$l',
  '"; i=$((i + 1)); done',
  '[ "$i" -eq "$n" ] || exit 0',
  'exec </dev/null',
  'eval "exec $c"',
].join('\n');

/** A spare for a unit with this env and cwd, or undefined when one cannot be made. */
export function prepareSpare(spec: Pick<SpawnSpec, 'cwd' | 'env' | 'marker'>): Spare | undefined {
  if (!existsSync(spec.cwd)) return undefined;
  const [file, ...args] = argvFor(['/bin/sh', '-c', SPARE_SCRIPT, 'bksup-spare']);
  let child: ChildProcess;
  try {
    child = spawn(file as string, args, { cwd: spec.cwd, env: envFor(spec), detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch {
    return undefined;
  }
  if (child.pid === undefined) {
    child.on('error', () => {});
    return undefined;
  }
  const spare: Spare = { child, pid: child.pid, spec: { cwd: spec.cwd, env: spec.env }, marker: spec.marker, dead: false };
  child.on('error', () => (spare.dead = true));
  child.once('exit', () => (spare.dead = true));
  // Writing to a spare whose shell already died must not throw (EPIPE): launch checks `dead`.
  child.stdin?.on('error', () => {});
  return spare;
}

/** Whether `spare` can run `spec` now: alive, same env and cwd, the program can be found. */
export function spareFits(spare: Spare, spec: SpawnSpec): boolean {
  if (spare.dead || spare.spec.cwd !== spec.cwd || spare.spec.env !== spec.env) return false;
  const program = baseArgv(spec.command)[0];
  // Only what exec itself would find on PATH (not preflight's ~/.local/bin fallback).
  return program !== undefined && resolveProgram(program, spec.env.PATH ?? '', spec.cwd)?.onPath === true;
}

/** Turns the spare into the unit: from here on it is an ordinary child (see spawnChild). */
export function launchSpare(spare: Spare, command: SpawnSpec['command']): SpawnResult {
  const words = baseArgv(command).map(shellQuote).join(' ');
  const lines = words.split('\n').length;
  spare.child.stdin!.end(`${lines}\n${words}\n`);
  return { ok: true, child: spare.child, pid: spare.pid };
}

/** Ends an unused spare; resolves once it is gone. */
export function discardSpare(spare: Spare): Promise<void> {
  // Its pipes are never read: release them with the process.
  for (const stream of [spare.child.stdin, spare.child.stdout, spare.child.stderr]) stream?.destroy();
  if (spare.dead) return Promise.resolve();
  const gone = new Promise<void>((resolve) => spare.child.once('exit', () => resolve()));
  try {
    process.kill(-spare.pid, 'SIGKILL');
  } catch {
    return Promise.resolve();
  }
  return gone;
}

/** One word for `sh`: single quotes, with each ' written as '\''. Safe for any text, newlines too. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
