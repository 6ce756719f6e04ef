// Which config file a command means: `--config`, else $SUPERVISOR_CONFIG, else the first
// supervisor.config.{ts,mts,js,mjs} in the project directory (cwd or `-C`) or the nearest
// directory above it holding one (a developer runs `bksup status` from wherever they are in the
// project), else — inside a BK-Lite checkout, or with BKLITE_ROOT set — bk-supervisor's own
// config, which is BK-Lite's.
// Kept apart from the loader so that client commands (status, logs, …) can name the file
// without loading anything.

import { statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBkliteCheckout } from '../bklite-root.ts';

/** bk-supervisor's own config (this checkout's): the BK-Lite stack, or the demo stack. */
export const OWN_CONFIG = fileURLToPath(new URL('../../supervisor.config.ts', import.meta.url));

export const CONFIG_FILE_NAMES = ['supervisor.config.ts', 'supervisor.config.mts', 'supervisor.config.js', 'supervisor.config.mjs'] as const;

export interface LoadOptions {
  /** Where to look for the config file and what relative paths are relative to. */
  cwd: string;
  /** An explicit file (or a directory holding one), e.g. from `--config`. */
  configPath?: string;
  /** Environment: SUPERVISOR_CONFIG is read from it, and children inherit it (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Do not pass on what the config prints while it is evaluated (client commands). */
  quiet?: boolean;
  /** Evaluate the config even when the memo holds a result for it (src/config/memo.ts). */
  fresh?: boolean;
}

/** How a file is named in messages: relative to cwd when inside it. */
export function displayPath(file: string, cwd: string): string {
  if (file === '<inline>') return file;
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function kindOfPath(path: string): 'file' | 'dir' | 'missing' {
  try {
    return statSync(path).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

/**
 * How the file was named: `--config`, `$SUPERVISOR_CONFIG`, found in the directory (cwd or
 * `-C`) or above it, or bk-supervisor's own for a BK-Lite checkout without a config of its own.
 */
export type ConfigSource = '--config' | 'SUPERVISOR_CONFIG' | 'dir' | 'parent' | 'bklite';

export type FindResult = { ok: true; file: string; via: ConfigSource } | { ok: false; error: string };

/** opts.configPath, else $SUPERVISOR_CONFIG, else supervisor.config.{ts,mts,js,mjs} in cwd. */
export function findConfigFile(opts: LoadOptions): FindResult {
  const env = opts.env ?? process.env;
  const explicit = opts.configPath ?? (env.SUPERVISOR_CONFIG || undefined);
  const via = opts.configPath !== undefined ? '--config' : 'SUPERVISOR_CONFIG';
  const searchIn = (dir: string, from: ConfigSource): FindResult => {
    for (const name of CONFIG_FILE_NAMES) {
      const file = join(dir, name);
      if (kindOfPath(file) === 'file') return { ok: true, file, via: from };
    }
    return { ok: false, error: `no supervisor.config.ts in ${dir}${from === 'dir' ? ' or above it' : ''}: create one (see README), pass --config, or run inside a BK-Lite checkout (or set BKLITE_ROOT) for bk-supervisor's BK-Lite config` };
  };
  if (explicit === undefined) {
    const dir = resolve(opts.cwd);
    const inDir = searchIn(dir, 'dir');
    if (inDir.ok) return inDir;
    for (let up = dir; up !== dirname(up); ) {
      up = dirname(up);
      const above = searchIn(up, 'parent');
      if (above.ok) return above;
    }
    // A developer in their BK-Lite checkout (`bksup` on PATH through npm link) means BK-Lite:
    // the config that runs it is this package's own, which finds the checkout around cwd.
    if ((env['BKLITE_ROOT']?.trim() || findBkliteCheckout(dir, {})) && kindOfPath(OWN_CONFIG) === 'file') return { ok: true, file: OWN_CONFIG, via: 'bklite' };
    return inDir;
  }
  const path = resolve(opts.cwd, explicit);
  switch (kindOfPath(path)) {
    case 'file':
      return { ok: true, file: path, via };
    case 'dir':
      return searchIn(path, via);
    default:
      return { ok: false, error: `${displayPath(path, opts.cwd)}: config file not found (check ${via})` };
  }
}
