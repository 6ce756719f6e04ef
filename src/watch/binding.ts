// Which @parcel/watcher binary the tree watches use. On Linux, the one scripts/build-watcher.mjs
// built (at `npm ci`) from @parcel/watcher's own sources without the 500 ms timeout of its
// watcher thread's poll: an idle daemon then has no timed wake-ups for watching. Otherwise (not
// built, another OS, or built for another @parcel/watcher version than the one installed) the
// package's prebuilt binary, which works the same but wakes every 500 ms.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

type ParcelWatcher = typeof import('@parcel/watcher');

export interface WatcherBinding {
  subscribe: ParcelWatcher['subscribe'];
  /** `built` (no timed wake-ups) or `prebuilt`. */
  kind: 'built' | 'prebuilt';
}

const require = createRequire(import.meta.url);
const PACKAGE_ROOT = join(import.meta.dirname, '..', '..');

/** Where scripts/build-watcher.mjs puts the binary for the installed @parcel/watcher. */
export function builtBinaryPath(root = PACKAGE_ROOT): string {
  const { version } = require('@parcel/watcher/package.json') as { version: string };
  return join(root, 'build', 'parcel-watcher', version, 'watcher.node');
}

let loaded: WatcherBinding | undefined;

export async function watcherBinding(): Promise<WatcherBinding> {
  if (loaded) return loaded;
  const built = builtBinaryPath();
  if (process.platform === 'linux' && existsSync(built)) {
    const { createWrapper } = require('@parcel/watcher/wrapper.js') as { createWrapper: (binding: unknown) => ParcelWatcher };
    loaded = { subscribe: createWrapper(require(built)).subscribe, kind: 'built' };
  } else {
    const watcher = await import('@parcel/watcher');
    loaded = { subscribe: watcher.subscribe, kind: 'prebuilt' };
  }
  return loaded;
}
