// The @parcel/watcher binary built by scripts/build-watcher.mjs (npm ci runs it): the tree
// watches use it, it reports changes and skips ignored directories, and it stops and starts
// again although its watcher thread no longer wakes up on a timer. Its idle cost is measured by
// the bench (`--only watch`), not here.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtBinaryPath, watcherBinding } from '../src/watch/binding.ts';
import { waitFor } from './helpers/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'bksup-watch-binding-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('watcher binding', () => {
  it('on Linux the tree watches use the binary built without the timed poll', async () => {
    expect(process.platform).toBe('linux');
    const binding = await watcherBinding();
    expect(binding.kind, `${builtBinaryPath()} is missing: npm ci builds it, or npm run build:watcher`).toBe('built');
  });

  it('reports a change, skips ignored directories, and unsubscribes', async () => {
    const { subscribe } = await watcherBinding();
    mkdirSync(join(dir, 'node_modules', 'pkg'), { recursive: true });
    mkdirSync(join(dir, 'app'));
    const seen: string[] = [];
    const sub = await subscribe(dir, (err, events) => {
      if (!err) seen.push(...events.map((e) => e.path));
    }, { ignore: ['**/node_modules'] });
    writeFileSync(join(dir, 'node_modules', 'pkg', 'index.js'), 'x');
    writeFileSync(join(dir, 'app', 'nats.py'), 'x = 1\n');
    await waitFor(() => seen.includes(join(dir, 'app', 'nats.py')), { message: 'the change of app/nats.py' });
    expect(seen.filter((p) => p.includes('node_modules'))).toEqual([]);
    // The last unsubscribe stops the watcher thread (through its pipe: no timeout wakes it any
    // more); a new subscription then starts another one.
    await sub.unsubscribe();
    const marks: string[] = [];
    const again = await subscribe(join(dir, 'app'), (err, events) => {
      if (!err) marks.push(...events.map((e) => e.path));
    });
    writeFileSync(join(dir, 'app', 'mark.py'), 'x = 3\n');
    await waitFor(() => marks.includes(join(dir, 'app', 'mark.py')), { message: 'the new subscription sees mark.py' });
    await again.unsubscribe();
  });
});
