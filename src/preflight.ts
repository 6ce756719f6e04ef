// Checks that catch a broken setup before anything starts, each problem one line naming the
// unit and the fix. The `uv` trap: uv installs itself into ~/.local/bin, which login shells
// add to PATH but IDE terminals and services often do not; we look there too, and when the
// program is only found there, the unit's PATH is extended so the child finds it as well.

import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { SHELL_OWN } from './util/shell-words.ts';
import type { ResolvedConfig, ResolvedUnit } from './config/types.ts';

export const EXTRA_BIN_DIRS = ['.local/bin', '.cargo/bin'];

export interface Problem {
  unit: string | undefined;
  message: string;
}

/** The program a command runs: argv[0], or the first word of a shell string after `VAR=x` prefixes. */
export function programOf(command: string | readonly string[]): string | undefined {
  if (typeof command !== 'string') return command[0];
  for (const word of command.trim().split(/\s+/)) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) continue;
    if (word === 'exec' || word === 'env') continue;
    // Shell syntax we do not try to interpret: leave it to the shell.
    if (/[|&;<>()$`\\"']/.test(word) || SHELL_OWN.has(word)) return undefined;
    return word;
  }
  return undefined;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export type Resolution = { path: string; dir: string; onPath: boolean } | undefined;

export function resolveProgram(program: string, pathVar: string, cwd: string, home = homedir()): Resolution {
  if (program.includes('/')) {
    const full = isAbsolute(program) ? program : join(cwd, program);
    return executable(full) ? { path: full, dir: '', onPath: true } : undefined;
  }
  for (const dir of pathVar.split(delimiter).filter(Boolean)) {
    const full = join(dir, program);
    if (executable(full)) return { path: full, dir, onPath: true };
  }
  for (const rel of EXTRA_BIN_DIRS) {
    const dir = join(home, rel);
    const full = join(dir, program);
    if (executable(full)) return { path: full, dir, onPath: false };
  }
  return undefined;
}

function commandOf(u: ResolvedUnit): string | readonly string[] | undefined {
  return u.kind === 'compose' ? undefined : u.command;
}

/** How to install the programs BK-Lite's dev.sh checks for, in dev.sh's own words. */
export const INSTALL_HINTS: Readonly<Record<string, string>> = Object.freeze({
  uv: 'curl -LsSf https://astral.sh/uv/install.sh | sh',
  pnpm: 'npm install -g pnpm',
});

/** Programs of every enabled unit; one problem per program not found (naming every unit that needs it), PATH additions for the rest. */
export function checkPrograms(config: ResolvedConfig, home = homedir()): { problems: Problem[]; pathAdditions: Map<string, string> } {
  const problems: Problem[] = [];
  const pathAdditions = new Map<string, string>();
  const missing = new Map<string, string[]>();
  for (const name of config.order) {
    const u = config.units[name]!;
    if (!u.enabled) continue;
    const cmd = commandOf(u);
    if (cmd === undefined) continue;
    const cwd = u.kind === 'compose' ? config.root : u.cwd;
    if (!existsSync(cwd)) {
      problems.push({ unit: name, message: `working directory ${cwd} does not exist (fix units.${name}.cwd)` });
      continue;
    }
    const program = programOf(cmd);
    if (!program) continue;
    const found = resolveProgram(program, u.env.PATH ?? process.env.PATH ?? '', cwd, home);
    if (!found) missing.set(program, [...(missing.get(program) ?? []), name]);
    else if (!found.onPath) pathAdditions.set(name, found.dir);
  }
  for (const [program, users] of missing) {
    const install = INSTALL_HINTS[program];
    const fix = install ? `install it: ${install}` : users.length === 1 ? `install it, or fix units.${users[0]}.command` : 'install it';
    const needed = users.length > 1 ? ` (needed by ${users.join(', ')})` : '';
    problems.push({ unit: users.length === 1 ? users[0] : undefined, message: `program "${program}" not found on PATH nor in ~/.local/bin or ~/.cargo/bin${needed}: ${fix}` });
  }
  return { problems, pathAdditions };
}

/** Returns a copy of the config whose units find programs that live outside PATH. */
export function withPathAdditions(config: ResolvedConfig, additions: Map<string, string>): ResolvedConfig {
  if (additions.size === 0) return config;
  const units: Record<string, ResolvedUnit> = { ...config.units };
  for (const [name, dir] of additions) {
    const u = units[name]!;
    const path = u.env.PATH ? `${dir}${delimiter}${u.env.PATH}` : dir;
    units[name] = Object.freeze({ ...u, env: Object.freeze({ ...u.env, PATH: path }) });
  }
  return Object.freeze({ ...config, units: Object.freeze(units) });
}
