// Teardown steps a test registers as it goes (daemons to stop, directories to remove), run after
// each test, last registered first, whether the test passed or not.

import { afterEach } from 'vitest';
import type { RunningCli } from './daemon.ts';
import { removeDir, tempDir } from './stack.ts';

export type Cleanups = (() => Promise<void> | void)[];

/** The list a test file pushes its teardown steps to; call once, at the file's top level. */
export function cleanupsAfterEach(): Cleanups {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}

/** A fresh temporary directory, removed by the cleanups. */
export function dirUntilCleanup(cleanups: Cleanups): string {
  const d = tempDir();
  cleanups.push(() => removeDir(d));
  return d;
}

/** SIGTERM to a CLI still running at teardown (a test that failed before its own `down`). */
export function stopAtCleanup(cleanups: Cleanups, cli: RunningCli): void {
  cleanups.push(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGTERM');
      await cli.exited;
    }
  });
}
