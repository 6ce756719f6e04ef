// What is never watched. Applied before a directory is watched (by @parcel/watcher's crawler),
// not after an event: a BK-Lite checkout holds tens of thousands of files under
// web/node_modules and server/.venv, and watching them would cost a watch per directory and
// memory per file for changes nobody wants to restart on.

import { sep } from 'node:path';
import picomatch from 'picomatch';

/** Directory names ignored wherever they appear. */
export const DEFAULT_IGNORED_DIRS = ['.git', 'node_modules', '.venv', '__pycache__'] as const;
/** File globs ignored wherever they appear. */
export const DEFAULT_IGNORED_FILES = ['*.pyc'] as const;

/** The `ignore` option of @parcel/watcher: globs for names anywhere, absolute paths for the logs and state dirs. */
export function watcherIgnores(logsDir: string, stateDir: string): string[] {
  return [...DEFAULT_IGNORED_DIRS.map((d) => `**/${d}`), ...DEFAULT_IGNORED_FILES.map((f) => `**/${f}`), logsDir, stateDir];
}

/** The same rules as a predicate over absolute paths, for events of a watcher that saw them anyway. */
export function defaultIgnored(logsDir: string, stateDir: string): (abs: string) => boolean {
  const dirs = new Set<string>(DEFAULT_IGNORED_DIRS);
  const files = picomatch([...DEFAULT_IGNORED_FILES], { basename: true, dot: true });
  const under = (abs: string, dir: string): boolean => abs === dir || abs.startsWith(dir + sep);
  return (abs) => {
    if (under(abs, logsDir) || under(abs, stateDir)) return true;
    const parts = abs.split(sep);
    for (const p of parts) if (dirs.has(p)) return true;
    return files(abs);
  };
}
