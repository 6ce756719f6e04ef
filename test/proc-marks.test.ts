// A unit's mark is read from /proc/PID/environ once per process life (src/util/proc.ts markOf).
// Inside execve the kernel shows an empty environment for a moment (the new program's memory is
// in place, its environment not yet): about 5% of reads of a process that keeps exec'ing. A read
// in that moment must not be remembered as "no mark", or the process — pid and start time do not
// change across exec — is invisible to every later search by mark: a detached escapee that
// `exec`s `sleep` right after it detached survived `stop <unit>` that way in CI.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { listProcesses, markOf, readStat } from '../src/util/proc.ts';
import { cleanupsAfterEach, dirUntilCleanup } from './helpers/cleanups.ts';
import { waitFor } from './helpers/wait.ts';

const CHAINS = 60;
const EXECS = 40;

const cleanups = cleanupsAfterEach();

it('a process read while it execs keeps its mark once its environment is back', async () => {
  const dir = dirUntilCleanup(cleanups);
  const chain = join(dir, 'chain.sh');
  // Execs itself EXECS times (same pid, same start time), then becomes `sleep`.
  writeFileSync(chain, `n=$1; if [ "$n" -gt 0 ]; then exec /bin/sh ${chain} $((n - 1)); fi; exec sleep 60\n`);
  // Grandchildren of this process, as a unit's escapees are of the daemon (markOf never
  // remembers the reader's own children: between fork and exec they show its environment).
  const launcher = spawn('/bin/sh', ['-c', `i=0; while [ $i -lt ${CHAINS} ]; do BKSUP_UNIT=marks-test:$i /bin/sh ${chain} ${EXECS} & echo $i $!; i=$((i + 1)); done; wait`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'ignore'],
    detached: true,
  });
  // The launcher's group: the launcher and every chain (they stay in its process group).
  cleanups.push(() => {
    try {
      process.kill(-launcher.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  });
  let out = '';
  launcher.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const marks = new Map<number, string>();
  await waitFor(
    () => {
      for (const line of out.split('\n')) {
        const [i, pid] = line.split(' ').map(Number);
        if (i !== undefined && pid) marks.set(pid, `marks-test:${i}`);
      }
      return marks.size === CHAINS;
    },
    { timeout: 30_000, interval: 0, message: 'every chain started' },
  );
  // Read every chain's mark as often as the scans of a busy daemon would, while they exec.
  await waitFor(
    () => {
      for (const p of listProcesses()) if (marks.has(p.pid)) markOf(p);
      return [...marks.keys()].every((pid) => readStat(pid)?.comm === 'sleep');
    },
    { timeout: 60_000, interval: 0, message: 'every chain ended in sleep' },
  );
  const seen = listProcesses().filter((p) => marks.has(p.pid));
  expect(seen).toHaveLength(CHAINS);
  const wrong = seen.filter((p) => markOf(p) !== marks.get(p.pid)).map((p) => p.pid);
  expect(wrong, 'processes whose mark was lost').toEqual([]);
}, 90_000);
