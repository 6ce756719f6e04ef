// Fault injection: the disk holding logs/ fills up (a 16 MiB tmpfs mounted there, then filled by
// the test). What must hold: the daemon keeps supervising (a restart request is carried out), a
// child printing flat out is never blocked for good (it keeps advancing while nothing can be
// written), the loss is counted and said once, and logging resumes once there is room again.
// Needs root (mount); CI runs as root.

import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeConfig } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { tempDir, removeDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups } from './fixtures/fault/harness.ts';

const NODE = process.execPath;
const FAULT = join(import.meta.dirname, 'fixtures', 'fault');
const BIN = join(import.meta.dirname, 'fixtures', 'bin');

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Writes zeros into `file` until the filesystem says ENOSPC; returns the bytes written. */
function fillUp(file: string): number {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(64 * 1024);
  let total = 0;
  try {
    for (;;) total += writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return total;
}

function progress(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8')) || 0;
  } catch {
    return 0;
  }
}

describe('fault injection: disk full', () => {
  it('logs on a full disk: children keep running unblocked, supervision goes on, the loss is said once, logging resumes', { timeout: 120_000 }, async () => {
    const dir = cleanups.project('bksup-fault-disk-');
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', logs]);
    cleanups.add(() => execFileSync('umount', ['-l', logs]));
    const side = tempDir('bksup-disk-progress-');
    cleanups.add(() => removeDir(side));
    const progressFile = join(side, 'progress');
    const port = await freePort();
    writeConfig(
      dir,
      `{ units: {
        flooder: { command: [${JSON.stringify(NODE)}, ${JSON.stringify(join(FAULT, 'steady-flood.mjs'))}, ${JSON.stringify(progressFile)}] },
        beacon: { command: [${JSON.stringify(NODE)}, ${JSON.stringify(join(BIN, 'ready-after.mjs'))}, '0', '${port}'],
                  healthcheck: { http: 'http://127.0.0.1:${port}/', interval: '200ms' } },
      } }`,
    );
    const d = cleanups.daemon(dir);
    await d.allHealthy(['flooder', 'beacon']);
    await waitFor(() => progress(progressFile) > 10_000, { timeout: 30_000, message: 'the flooder printing' });

    // Full: nothing more fits (the log files keep what they had).
    const filler = join(logs, 'filler');
    fillUp(filler);
    await waitFor(() => /cannot write .*flooder\.log.*(ENOSPC|no space left)/i.test(d.output()), { timeout: 30_000, message: 'ENOSPC reported' });
    const atFull = progress(progressFile);

    // The child is not blocked: far more than the daemon's backlog bound goes through.
    await waitFor(() => progress(progressFile) > atFull + 150_000, { timeout: 60_000, message: 'the flooder still advancing on a full disk' });
    // The daemon still supervises: a restart request is carried out.
    const beaconPid = (await d.unit('beacon')).pid;
    expect((await d.api('POST', '/api/units/beacon/restart')).status).toBeLessThan(300);
    await waitFor(async () => {
      const b = await d.unit('beacon');
      return b.state === 'healthy' && b.pid !== beaconPid;
    }, { timeout: 30_000, message: 'beacon restarted and healthy while the disk is full' });
    // The loss is counted and said once (per unit), not once per line or per retry.
    await waitFor(() => /flooder.*dropped the oldest \d+ line/.test(d.output()), { timeout: 30_000, message: 'the drop reported' });
    const out = d.output();
    expect(out.match(/cannot write logs\/flooder\.log/g)).toHaveLength(1);
    expect(out.match(/dropped the oldest \d+ line\(s\) of flooder/g)).toHaveLength(1);

    // Room again: logging resumes, and the file says how much it lost.
    rmSync(filler);
    const resumedFrom = progress(progressFile);
    await waitFor(() => /flooder: writing logs\/flooder\.log again; \d+ line\(s\) were lost/.test(d.output()), { timeout: 30_000, message: 'the recovery said' });
    await waitFor(
      () => {
        const text = readFileSync(join(logs, 'flooder.log'), 'latin1');
        const last = [...text.matchAll(/ line (\d+) /g)].at(-1);
        return last !== undefined && Number(last[1]) > resumedFrom;
      },
      { timeout: 30_000, message: 'new lines in flooder.log after space returned' },
    );
    const text = readFileSync(join(logs, 'flooder.log'), 'latin1');
    expect(text).toMatch(/system \d+ \[bksup\] \d+ line\(s\) of this log were lost: .*(ENOSPC|no space left)/i);
    expect((await d.unit('flooder')).restarts).toBe(0);
    // supervisor.log, on the same full disk, comes back too.
    await waitFor(() => /writing logs\/flooder\.log again/.test(readFileSync(join(logs, 'supervisor.log'), 'utf8')), { timeout: 10_000, message: 'supervisor.log written again' });
    expect(d.running).toBe(true);
  });
});
