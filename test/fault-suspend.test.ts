// Fault injection: suspend and resume. A laptop lid stops every process at once and lets them
// go on later with the clock 30 s ahead. Here the daemon and every process below it are
// SIGSTOPped for 30 s, then SIGCONTed (children first, the daemon last, as they wake).
//
// What must hold: no restart storm and no unit unhealthy or failed for probe timeouts that were
// the pause's fault (probes are tight: 1 s timeout, one failure is enough); a unit that was in
// backoff restarts once, as it would have; every pid is the same afterwards.

import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readStat } from '../src/util/proc.ts';
import { writeConfig } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { removeDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups } from './fixtures/fault/harness.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'bin');
const NODE = process.execPath;
const PAUSE_MS = 30_000;

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** The daemon and every process below it, parents first (read from /proc, not the daemon). */
function treeOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st || st.state === 'Z') continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(name));
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

function signalAll(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone meanwhile
    }
  }
}

describe('fault injection: suspend and resume', () => {
  it('the whole stack stopped for 30 s: no restart storm, nothing unhealthy or failed, backoff resumes once', { timeout: 120_000 }, async () => {
    const dir = cleanups.project('bksup-fault-suspend-');
    const data = mkdtempSync(join(tmpdir(), 'bksup-suspend-nats-'));
    cleanups.add(() => removeDir(data));
    const [natsPort, webPort] = [await freePort(), await freePort()];
    const tight = `interval: '200ms', timeout: '1s', retries: 1`;
    const flag = join(dir, 'crashed-once');
    writeConfig(
      dir,
      `{ units: {
        broker: { command: ['nats-server', '-a', '127.0.0.1', '-p', '${natsPort}', '-js', '-sd', ${JSON.stringify(data)}],
                  healthcheck: { nats: 'nats://127.0.0.1:${natsPort}', jetstream: true, ${tight} }, stop: { signal: 'SIGINT' } },
        web: { command: [${JSON.stringify(NODE)}, ${JSON.stringify(join(FIXTURES, 'ready-after.mjs'))}, '0', '${webPort}'],
               dependsOn: { broker: 'healthy' }, onDependencyFailure: 'restart',
               healthcheck: { http: 'http://127.0.0.1:${webPort}/', ${tight} } },
        crasher: { command: ${JSON.stringify(`if [ -e '${flag}' ]; then exec '${NODE}' '${join(FIXTURES, 'forever.mjs')}'; else touch '${flag}'; exit 1; fi`)},
                   restart: { policy: 'always', backoff: { initial: '8s', max: '30s' }, maxRestarts: 2, window: '10m' } },
      } }`,
    );
    const d = cleanups.daemon(dir);
    const rec = await d.recordEvents();
    cleanups.add(() => rec.close());
    await waitFor(
      async () => {
        const rows = new Map((await d.units()).map((r) => [r.name, r]));
        return rows.get('broker')?.state === 'healthy' && rows.get('web')?.state === 'healthy' && rows.get('crasher')?.state === 'backoff';
      },
      { timeout: 60_000, interval: 50, message: 'broker and web healthy, crasher in its backoff' },
    );
    const before = new Map((await d.units()).map((r) => [r.name, r]));

    // Suspend: the daemon first (it starts nothing new while its children are being stopped).
    signalAll([d.pid], 'SIGSTOP');
    const stack = treeOf(d.pid);
    signalAll(stack, 'SIGSTOP');
    const resumeIndex = rec.events.length;
    await new Promise((r) => setTimeout(r, PAUSE_MS)); // the pause itself is the fault, not a synchronisation
    signalAll(stack.slice(1).reverse(), 'SIGCONT');
    signalAll([d.pid], 'SIGCONT');
    const t0 = Date.now();

    await waitFor(
      async () => {
        const rows = new Map((await d.units()).map((r) => [r.name, r]));
        return ['broker', 'web', 'crasher'].every((n) => rows.get(n)?.state === 'healthy') ? rows : undefined;
      },
      { timeout: 30_000, interval: 50, message: 'every unit healthy after the resume' },
    );
    const wokeMs = Date.now() - t0;
    const after = new Map((await d.units()).map((r) => [r.name, r]));
    const since = rec.events.slice(resumeIndex).map((e) => `${e.unit} ${e.prev} → ${e.state}${e.reason ? `: ${e.reason}` : ''}`);

    // Nothing went unhealthy, failed or stopped because of the pause.
    expect(since.filter((s) => /→ (unhealthy|failed|stopping|stopped|backoff)/.test(s))).toEqual([]);
    expect(after.get('broker')!.pid).toBe(before.get('broker')!.pid);
    expect(after.get('web')!.pid).toBe(before.get('web')!.pid);
    expect(after.get('broker')!.restarts).toBe(0);
    expect(after.get('web')!.restarts).toBe(0);
    // The backoff that was running resumed and restarted the crasher exactly once.
    expect(after.get('crasher')!.restarts).toBe(1);
    expect(since.filter((s) => s.startsWith('crasher'))).toEqual(['crasher backoff → starting', 'crasher starting → running', 'crasher running → healthy']);
    // The daemon says what happened instead of leaving the user to guess.
    await waitFor(() => /paused for \d+(\.\d+)? s/.test(d.output()), { timeout: 10_000, message: 'the pause reported' });
    // supervisor.log is written in batches: wait for the one holding it.
    await waitFor(() => /paused for \d+(\.\d+)? s/.test(readFileSync(join(dir, 'logs', 'supervisor.log'), 'utf8')), { timeout: 10_000, message: 'the pause in supervisor.log' });
    console.log(`resumed: every unit healthy ${wokeMs} ms after SIGCONT; events since: ${since.length}`);
  });
});
