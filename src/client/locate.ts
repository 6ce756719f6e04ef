// Where the daemon of a config keeps its state, found exactly as `up` places it: the config is
// named the same way (`--config`, $SUPERVISOR_CONFIG, the project directory: cwd or `-C`) and its
// `root` is what the config evaluates to — which may depend on the environment (BKLITE_ROOT) and
// the file system (a BK-Lite checkout around the current directory). The root comes from the
// config memo (src/config/memo.ts) while what the evaluation read is unchanged, so that a client
// command loads no TypeScript; otherwise the config is evaluated once, quietly, as `up` would.

import { dirname, resolve } from 'node:path';
import type { Dep } from '../config/deps.ts';
import { findConfigFile, type ConfigSource } from '../config/find.ts';
import { findMemo, memoVariants } from '../config/memo.ts';
import { findDaemon, type DaemonPlace } from './daemon.ts';
import { isSecretName, redactUrl } from '../util/redact.ts';

export interface LocateOptions {
  /** The project directory: cwd, or `-C`. */
  dir: string;
  /** `--config`. */
  config?: string;
  env?: NodeJS.ProcessEnv;
}

export type LocateResult = { ok: true; place: DaemonPlace } | { ok: false; error: string };

const SOURCE: Record<ConfigSource, string> = {
  '--config': 'from --config',
  SUPERVISOR_CONFIG: 'from $SUPERVISOR_CONFIG',
  dir: 'found in the project directory',
  parent: 'found above the current directory',
  bklite: "bk-supervisor's BK-Lite config: none in the directory",
};

/** What every shell sets: not what placed the daemon, even when a config copies the whole environment. */
const SHELL_VARS = /^(NODE_|npm_|LC_)|^(PATH|HOME|PWD|OLDPWD|SHLVL|_|TERM|LANG|SHELL|USER|LOGNAME|HOSTNAME)$/;
const SHOWN_VARS = 4;

/** The variables the config's evaluation read that are set (e.g. BKLITE_ROOT): part of "how". */
function envNote(deps: readonly Dep[]): string {
  // A config may read secrets (DB_PASSWORD) while it is evaluated: named, never shown.
  const set = deps.flatMap((d) =>
    d.kind === 'env' && d.value !== null && d.value !== '' && !SHELL_VARS.test(d.name) ? [`${d.name}=${isSecretName(d.name) ? '***' : redactUrl(d.value)}`] : [],
  );
  if (set.length === 0) return '';
  // A config that copies the environment read every variable: a few say enough.
  const more = set.length > SHOWN_VARS ? ` and ${set.length - SHOWN_VARS} more variables` : '';
  return `, evaluated with ${set.slice(0, SHOWN_VARS).join(' ')}${more}`;
}

export async function locateDaemon(opts: LocateOptions): Promise<LocateResult> {
  const env = opts.env ?? process.env;
  const found = findConfigFile({ cwd: opts.dir, ...(opts.config !== undefined ? { configPath: opts.config } : {}), env });
  if (!found.ok) {
    // Without a config to ask, the directory itself is the guess (a daemon may have been started
    // here with a config kept elsewhere); the message says why.
    if (opts.config !== undefined || env.SUPERVISOR_CONFIG) return { ok: false, error: found.error };
    return { ok: true, place: { root: resolve(opts.dir), how: `no supervisor.config.ts is there or above it either (run in the project, or pass -C or --config)` } };
  }
  const how = (deps: readonly Dep[]): string => `the root of ${found.file} (${SOURCE[found.via]}${envNote(deps)})`;
  const memo = findMemo(found.file, env);
  if (memo) return { ok: true, place: await preferRunning({ root: memo.root, how: how(memo.deps) }, found.file, env) };

  // Not evaluated with these inputs yet: once now (which also fills the memo for next time).
  const { loadConfig } = await import('../config/load.ts');
  const loaded = await loadConfig({ cwd: opts.dir, ...(opts.config !== undefined ? { configPath: opts.config } : {}), env, quiet: true });
  if (!loaded.ok) {
    // An edit a running daemon refused (it keeps the config it has): that daemon is still the one.
    const running = await onlyRunning(found.file, env, [resolve(opts.dir), dirname(found.file)]);
    if (running) return { ok: true, place: running };
    return { ok: false, error: `cannot tell where the supervisor of ${found.file} keeps its state: the config is not valid:\n${loaded.errors.map((e) => `  ${e}`).join('\n')}` };
  }
  return { ok: true, place: await preferRunning({ root: loaded.config.root, how: how(findMemo(found.file, env)?.deps ?? []) }, found.file, env) };
}

/**
 * The place itself when a daemon runs there. Otherwise, when exactly one daemon runs from another
 * evaluation of the same config — `BKLITE_ROOT=… npm run supervise` in one terminal, `bksup
 * status` without BKLITE_ROOT in the next — that one: it is the only supervisor of this config.
 */
async function preferRunning(place: DaemonPlace, file: string, env: NodeJS.ProcessEnv): Promise<DaemonPlace> {
  if ((await findDaemon(place)).ok) return place;
  const other = await onlyRunning(file, env, [], place.root);
  // Said, not silent: BKLITE_ROOT set here but not in `up`'s terminal would show another stack.
  return other ? { ...other, notice: `bksup: no supervisor runs in ${place.root}; this is the only one of ${file}, in ${other.root}` } : place;
}

/** The one live daemon among the roots `file` was evaluated to (and `extra` directories), if exactly one. */
async function onlyRunning(file: string, env: NodeJS.ProcessEnv, extra: string[], except?: string): Promise<DaemonPlace | undefined> {
  const candidates = new Map<string, readonly Dep[]>();
  for (const e of memoVariants(file, env)) if (!candidates.has(e.root)) candidates.set(e.root, e.deps);
  for (const dir of extra) if (!candidates.has(dir)) candidates.set(dir, []);
  const live: [string, readonly Dep[]][] = [];
  for (const [root, deps] of candidates) if (root !== except && (await findDaemon(root)).ok) live.push([root, deps]);
  const only = live.length === 1 ? live[0] : undefined;
  return only ? { root: only[0], how: `the root of ${file} as \`up\` evaluated it${envNote(only[1])}` } : undefined;
}
