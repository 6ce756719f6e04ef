// Following the developer's edits while the daemon runs: the units' file watches, the watch on
// the config's own files (automatic reload unless `reload: false`), and `bksup reload`. After
// every applied reload both watches are set up again from the new config.

import type { LoadOptions } from '../config/load.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { Reloader } from '../reload.ts';
import type { Supervisor } from '../supervisor.ts';
import { ConfigFilesWatcher } from './config-files.ts';
import { watchUnits, type WatchLog } from './index.ts';
import type { TreeWatcher } from './tree-watcher.ts';

/** Quiet time after the last save of a config file before it is reloaded. */
const CONFIG_QUIET_MS = 200;

export class LiveUpdates {
  readonly reloader: Reloader;
  readonly #sup: Supervisor;
  readonly #log: WatchLog;
  #tree: TreeWatcher | undefined;
  #configFiles: ConfigFilesWatcher | undefined;
  #sources: readonly string[];
  #closed = false;

  constructor(sup: Supervisor, load: LoadOptions, sources: readonly string[], log: WatchLog) {
    this.#sup = sup;
    this.#log = log;
    this.#sources = sources.length ? sources : sup.config.file === '<inline>' ? [] : [sup.config.file];
    this.reloader = new Reloader({
      load,
      sup,
      onSources: (s) => {
        this.#sources = s;
      },
      onApplied: (config) => this.#arm(config),
    });
  }

  /** Resolves once every watch is in place. */
  start(): Promise<void> {
    return this.#arm(this.#sup.config);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#configFiles?.close();
    await this.#tree?.close();
  }

  async #arm(config: ResolvedConfig): Promise<void> {
    if (this.#closed) return;
    this.#configFiles?.close();
    this.#configFiles = undefined;
    if (config.reload) {
      const files = [...new Set([...this.#sources, ...config.envFiles])];
      this.#configFiles = new ConfigFilesWatcher(files, CONFIG_QUIET_MS, (changed) => {
        const first = changed[0] ?? config.file;
        void this.reloader.reload(`${displayed(config.root, first)} changed`);
      }, (m) => this.#log('warn', m));
    }
    // The new watches are in place before the old ones go, and the old watcher's unfired bursts
    // move over: an edit saved just before or while the config reloads still restarts its unit.
    const tree = await watchUnits(config, this.#sup, this.#log);
    const old = this.#tree;
    this.#tree = undefined;
    if (old) {
      tree.adopt(old.takePending());
      await old.close();
    }
    if (this.#closed) await tree.close();
    else this.#tree = tree;
  }
}

function displayed(root: string, file: string): string {
  return file.startsWith(root + '/') ? file.slice(root.length + 1) : file;
}
