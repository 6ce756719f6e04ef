// Wires the units' `watch` settings to the supervisor: one TreeWatcher over every watched unit,
// each burst becoming one restartForChange with the changed paths as its reason.

import type { ResolvedConfig } from '../config/types.ts';
import { TreeWatcher, type WatchTarget } from './tree-watcher.ts';

export interface ChangeRestarter {
  restartForChange(unit: string, change: string, cascade: boolean): 'restarted' | 'deferred' | 'ignored';
}

export type WatchLog = (level: 'info' | 'warn', msg: string, extra?: Record<string, unknown>) => void;

/** `server/a.py changed`, `server/a.py and 499 more changed`. */
export function describeChange(paths: readonly string[]): string {
  const first = paths[0] ?? '(unknown file)';
  return paths.length > 1 ? `${first} and ${paths.length - 1} more changed` : `${first} changed`;
}

/** Starts watching for every enabled unit with `watch`; resolves once the watches are in place. */
export async function watchUnits(config: ResolvedConfig, sup: ChangeRestarter, log: WatchLog): Promise<TreeWatcher> {
  const targets: WatchTarget[] = [];
  for (const name of config.order) {
    const u = config.units[name]!;
    if (!u.enabled || !u.watch) continue;
    const w = u.watch;
    targets.push({
      unit: name,
      paths: w.paths,
      ignore: w.ignore,
      debounceMs: w.debounceMs,
      onChange: (paths) => {
        const change = describeChange(paths);
        const outcome = sup.restartForChange(name, change, w.cascade);
        const what = outcome === 'restarted' ? `restarted: ${change}` : outcome === 'deferred' ? `${change}: not restarted, its coming start runs it` : `${change}: not restarted (not running)`;
        log('info', `${name}: ${what}`, { unit: name, files: paths.slice(0, 20), changed: paths.length, cascade: w.cascade });
      },
    });
  }
  const watcher = new TreeWatcher({ root: config.root, logsDir: config.logs.dir, stateDir: config.stateDir, targets, onError: (m) => log('warn', `watch: ${m}`) });
  await watcher.start();
  return watcher;
}
