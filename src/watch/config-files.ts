// Watches the config file, the files it imports and its env files, for the automatic reload.
// One non-recursive fs.watch per directory holding such a file (never a tree), filtered by
// name: editors replace files by rename, which a watch on the file itself would lose.

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Burst } from './debounce.ts';

export class ConfigFilesWatcher {
  readonly #watchers: FSWatcher[] = [];
  readonly #burst: Burst;

  /** `onChange` gets the changed files (absolute), once per burst of `quietMs`. */
  constructor(files: readonly string[], quietMs: number, onChange: (files: string[]) => void, onError?: (msg: string) => void) {
    this.#burst = new Burst(quietMs, onChange);
    const byDir = new Map<string, Set<string>>();
    for (const f of files) {
      const names = byDir.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      byDir.set(dirname(f), names);
    }
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          const n = name?.toString();
          if (n !== undefined && names.has(n)) this.#burst.add([`${dir}/${n}`]);
        });
        w.on('error', (err) => onError?.(`watching ${dir}: ${err.message}`));
        this.#watchers.push(w);
      } catch (err) {
        onError?.(`cannot watch ${dir} for config changes: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  close(): void {
    this.#burst.cancel();
    for (const w of this.#watchers.splice(0)) w.close();
  }
}
