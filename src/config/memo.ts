// The config memo: what a config evaluated to, kept on disk (node_modules/.cache/bksup/config/,
// one file per config path, mode 0600: a resolved config holds the environment) and reused while
// what the evaluation read is unchanged (src/config/deps.ts). Two levels:
//
// - the evaluation: the config's source and imports, the env variables and paths it looked at →
//   its root and state directory. Client commands (status, logs, …) need only this, to find the
//   daemon exactly where `up` put it, without loading TypeScript.
// - the resolved config: additionally keyed by this build of bk-supervisor, the directory, the
//   whole environment (every unit inherits it) and the env files read → what `up` runs, without
//   starting the loader process.
//
// Only successful loads are kept; a config with errors is evaluated again each time.

import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import { depsHold, digest, envSig, type Dep } from './deps.ts';
import type { ResolvedConfig } from './types.ts';

export interface MemoEntry {
  /** What evaluating the config read (its source and imports included). */
  deps: Dep[];
  root: string;
  stateDir: string;
  /** The config file and the local files it imports (ConfigResult.sources). */
  sources?: string[];
  /** What the config printed while being evaluated, replayed when `up` reuses it. */
  output: { stdout: string; stderr: string };
  /** The key of the resolved config kept beside (its own file: client commands never read it). */
  resolved?: ResolvedStamp;
}

export interface ResolvedStamp {
  tool: string;
  cwd: string;
  env: string;
  /** Files the resolution read (env files). */
  deps: Dep[];
}

/** Variants kept per config file (e.g. the root config with and without BKLITE_ROOT). */
const VARIANTS = 4;
/** Memo files kept in all; the oldest go first. */
const MAX_FILES = 200;

export function memoDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.BKSUP_CACHE_DIR || join(fileURLToPath(new URL('../../node_modules/.cache/bksup/config', import.meta.url)));
}

function memoFile(configFile: string, env: NodeJS.ProcessEnv): string {
  return join(memoDir(env), `${digest(configFile).replace(':', '-')}.bin`);
}

/** The resolved config of one variant: `<memo file>.<digest of its deps>.cfg`. */
function resolvedFile(memo: string, entry: Pick<MemoEntry, 'deps'>): string {
  return `${memo.slice(0, -'.bin'.length)}.${digest(JSON.stringify(entry.deps)).replace(':', '-')}.cfg`;
}

function readVariants(path: string): MemoEntry[] {
  try {
    const v = deserialize(readFileSync(path)) as unknown;
    return Array.isArray(v) ? (v as MemoEntry[]) : [];
  } catch {
    return [];
  }
}

/** Every kept evaluation of `configFile`, newest first, whether or not it still holds. */
export function memoVariants(configFile: string, env: NodeJS.ProcessEnv): MemoEntry[] {
  return readVariants(memoFile(configFile, env));
}

/** The newest entry for `configFile` whose evaluation would read the same things again. */
export function findMemo(configFile: string, env: NodeJS.ProcessEnv, cwd: () => string = () => process.cwd()): MemoEntry | undefined {
  return readVariants(memoFile(configFile, env)).find((e) => depsHold(e.deps, env, cwd));
}

export interface ResolvedKey {
  /** This build of bk-supervisor (a resolved config is its own data structure). */
  tool: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** The resolved config kept for `entry` (of `configFile`), when made for the same key. */
export function memoResolved(configFile: string, entry: MemoEntry, key: ResolvedKey): ResolvedConfig | undefined {
  const r = entry.resolved;
  if (!r || r.tool !== key.tool || r.cwd !== key.cwd || r.env !== envSig(key.env) || !depsHold(r.deps, key.env)) return undefined;
  try {
    return deserialize(readFileSync(resolvedFile(memoFile(configFile, key.env), entry))) as ResolvedConfig;
  } catch {
    return undefined;
  }
}

export function resolvedStamp(key: ResolvedKey, deps: Dep[]): ResolvedStamp {
  return { tool: key.tool, cwd: key.cwd, env: envSig(key.env), deps };
}

function sameDeps(a: readonly Dep[], b: readonly Dep[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function prune(dir: string): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.bin') || f.endsWith('.cfg'));
  if (files.length <= MAX_FILES) return;
  const aged = files.map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs })).sort((a, b) => a.t - b.t);
  for (const { f } of aged.slice(0, files.length - MAX_FILES / 2)) unlinkSync(join(dir, f));
}

/**
 * Keeps `entry` as the newest variant for `configFile`. Best effort: a read-only checkout just
 * has no memo (every command then evaluates the config, as without one).
 */
export function storeMemo(configFile: string, entry: MemoEntry, config: ResolvedConfig, env: NodeJS.ProcessEnv): void {
  const path = memoFile(configFile, env);
  const write = (target: string, value: unknown): void => {
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, serialize(value), { mode: 0o600 });
    renameSync(tmp, target); // atomic: a concurrent reader sees the old or the new file
  };
  try {
    const dir = memoDir(env);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The config first: an entry is never visible before what it points to.
    write(resolvedFile(path, entry), config);
    const others = readVariants(path).filter((e) => !sameDeps(e.deps, entry.deps));
    write(path, [entry, ...others].slice(0, VARIANTS));
    prune(dir);
  } catch {
    // no memo this time
  }
}
