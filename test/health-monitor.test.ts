// HealthMonitor timing semantics on a virtual clock (no sleeping), plus one run on real timers
// against a real TCP listener that comes, goes and comes back.

import { createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { abortReason } from '../src/health/abort.ts';
import { ABANDON_GRACE_MS, HealthMonitor, runProbeOnce, type HealthTimingMs } from '../src/health/monitor.ts';
import { createTcpProbe } from '../src/health/tcp.ts';
import type { Probe, ProbeResult } from '../src/health/types.ts';
import { FakeScheduler } from './helpers/fake-scheduler.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

type Step = { pass: string } | { fail: string } | { takeMs: number; then: ProbeResult } | 'hang' | 'ignore-abort' | 'throw';

/** A probe that plays a script, one step per attempt (the last step repeats), on the fake clock. */
class ScriptedProbe implements Probe {
  readonly label = 'scripted';
  starts: number[] = [];
  running = 0;
  maxRunning = 0;
  closed = 0;
  constructor(
    private readonly sched: FakeScheduler,
    private readonly steps: Step[],
  ) {}

  check(signal: AbortSignal): Promise<ProbeResult> {
    const step = this.steps.length > 1 ? this.steps.shift() : this.steps[0];
    this.starts.push(this.sched.now());
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const done = <T>(v: T): T => {
      this.running--;
      return v;
    };
    if (step === 'throw') {
      this.running--;
      throw new Error('bug in probe');
    }
    return new Promise<ProbeResult>((resolve) => {
      const settle = (r: ProbeResult): void => resolve(done(r));
      if (step === undefined || step === 'ignore-abort') return; // never settles
      if (step === 'hang') {
        signal.addEventListener('abort', () => settle({ ok: false, reason: `scripted: ${abortReason(signal)}` }), { once: true });
        return;
      }
      if ('pass' in step) return settle({ ok: true, detail: step.pass });
      if ('fail' in step) return settle({ ok: false, reason: step.fail });
      this.sched.setTimeout(() => settle(step.then), step.takeMs);
    });
  }

  close(): void {
    this.closed++;
  }
}

interface Recorded {
  events: string[];
  progress: ProbeResult[];
}

function monitor(steps: Step[], timing: Partial<HealthTimingMs> = {}) {
  const sched = new FakeScheduler(1_000_000);
  const probe = new ScriptedProbe(sched, steps);
  const rec: Recorded = { events: [], progress: [] };
  const m = new HealthMonitor(
    probe,
    { intervalMs: 1000, timeoutMs: 5000, retries: 3, startPeriodMs: 0, ...timing },
    {
      onHealthy: ({ recovered }) => rec.events.push(`${sched.now() - 1_000_000}: healthy${recovered ? ' (recovered)' : ''}`),
      onUnhealthy: (reason) => rec.events.push(`${sched.now() - 1_000_000}: unhealthy: ${reason}`),
      onProgress: (r) => rec.progress.push(r),
    },
    sched,
  );
  const rel = (): number[] => probe.starts.map((t) => t - 1_000_000);
  return { sched, probe, rec, m, rel };
}

const pass = (d = 'ok'): Step => ({ pass: d });
const fail = (r: string): Step => ({ fail: r });

describe('HealthMonitor (virtual clock)', () => {
  it('before the first pass only reports progress, never unhealthy', async () => {
    const { sched, rec, m, rel } = monitor([fail('refused')]);
    m.start();
    await sched.advance(100_000);
    expect(rec.events).toEqual([]);
    expect(rec.progress.length).toBe(101); // t=0, then every second
    expect(rec.progress.at(-1)).toEqual({ ok: false, reason: 'refused' });
    expect(m.state).toBe('starting');
    expect(m.passedOnce).toBe(false);
    expect(rel().slice(0, 3)).toEqual([0, 1000, 2000]);
    m.stop();
  });

  it('first pass → healthy; `retries` failures in a row → unhealthy with the last reason; a pass → recovered', async () => {
    const { sched, rec, m } = monitor([fail('a'), pass(), fail('b1'), fail('b2'), pass(), fail('c1'), fail('c2'), fail('c3'), fail('c4'), pass(), pass()]);
    m.start();
    await sched.advance(10_000);
    expect(rec.events).toEqual(['1000: healthy', '7000: unhealthy: c3', '9000: healthy (recovered)']);
    expect(m.state).toBe('healthy');
    expect(m.passedOnce).toBe(true);
    expect(m.lastResult).toEqual({ ok: true, detail: 'ok' });
    m.stop();
  });

  it('retries counts failures only in a row (a pass resets the count)', async () => {
    const { sched, rec, m } = monitor([pass(), fail('x'), fail('x'), pass(), fail('x'), fail('x'), pass()], { retries: 3 });
    m.start();
    await sched.advance(10_000);
    expect(rec.events).toEqual(['0: healthy']);
    m.stop();
  });

  it('poke(): an attempt at once before the first pass, not within POKE_MIN_GAP_MS of the last unless asked (poke(0): a co-dependency passed), never while one runs', async () => {
    const { sched, m, rel } = monitor([fail('refused'), fail('refused'), { takeMs: 50, then: { ok: false, reason: 'slow' } }, fail('refused')], { intervalMs: 1000 });
    m.start(); // attempt at 0, next due at 1000
    await sched.advance(3);
    m.poke(); // 3 ms after the last attempt began: too soon for a printed line
    await sched.advance(1);
    expect(rel()).toEqual([0]);
    m.poke(0); // a unit started with it just passed: probe now
    await sched.advance(1);
    expect(rel()).toEqual([0, 4]);
    await sched.advance(1000); // next attempt (slow) at 1004, in flight until 1054
    m.poke(0);
    await sched.advance(10);
    expect(rel()).toEqual([0, 4, 1004]);
    m.stop();
  });

  it('attempts never overlap: next attempt is `interval` after the previous one ended', async () => {
    const { sched, probe, m, rel } = monitor([{ takeMs: 3000, then: { ok: true } }], { intervalMs: 1000, timeoutMs: 5000 });
    m.start();
    await sched.advance(12_500);
    expect(rel()).toEqual([0, 4000, 8000, 12000]);
    expect(probe.maxRunning).toBe(1);
    m.stop();
  });

  it('an attempt is aborted at timeoutMs and counts as a failure with the probe reason', async () => {
    const { sched, rec, m, rel } = monitor([pass(), 'hang'], { timeoutMs: 2000, intervalMs: 1000, retries: 2 });
    m.start();
    await sched.advance(7_000);
    expect(rel()).toEqual([0, 1000, 4000, 7000]);
    expect(rec.progress[1]).toEqual({ ok: false, reason: 'scripted: timed out after 2s' });
    expect(rec.events).toEqual(['0: healthy', '6000: unhealthy: scripted: timed out after 2s']);
    m.stop();
  });

  it('a deadline that fires late because the daemon was paused restarts instead of failing the attempt', async () => {
    const { sched, rec, m } = monitor([pass(), 'hang'], { timeoutMs: 2000, intervalMs: 1000, retries: 1 });
    m.start();
    await sched.advance(1500); // healthy at 0; the second attempt (hanging) began at 1000
    await sched.pause(30_000); // its deadline (3000) fires at 31 500, far too late to mean anything
    expect(rec.events).toEqual(['0: healthy']);
    expect(rec.progress).toHaveLength(1);
    // A fresh deadline from the wake-up: a probe that still hangs then fails as it should.
    await sched.advance(2000);
    expect(rec.events).toEqual(['0: healthy', '33500: unhealthy: scripted: timed out after 2s']);
    m.stop();
  });

  it('a failure of its own (a client timeout) from an attempt that straddled a pause is checked once more', async () => {
    // The probe's own 2 s timer runs out during the pause: its failure arrives 30 s late.
    const { sched, rec, m } = monitor([pass(), { takeMs: 1500, then: { ok: false, reason: 'connect timed out' } }, pass()], {
      timeoutMs: 2000,
      intervalMs: 1000,
      retries: 1,
    });
    m.start();
    await sched.advance(1200);
    await sched.pause(30_000);
    await sched.advance(10);
    expect(rec.events).toEqual(['0: healthy']);
    expect(rec.progress.map((r) => r.ok)).toEqual([true, true]);
    m.stop();
  });

  it('a probe that ignores the abort is abandoned ABANDON_GRACE_MS later', async () => {
    const { sched, rec, m, rel } = monitor([pass(), 'ignore-abort'], { timeoutMs: 2000, intervalMs: 1000, retries: 1 });
    m.start();
    await sched.advance(1000 + 2000 + ABANDON_GRACE_MS);
    expect(rec.progress[1]).toEqual({ ok: false, reason: 'scripted: timed out after 2s (the probe did not stop when aborted)' });
    expect(rec.events).toEqual(['0: healthy', `${3000 + ABANDON_GRACE_MS}: unhealthy: scripted: timed out after 2s (the probe did not stop when aborted)`]);
    expect(rel()).toEqual([0, 1000]);
    m.stop();
  });

  it('a probe that throws is a failure that says so, and the loop goes on', async () => {
    const { sched, rec, m } = monitor(['throw', pass()]);
    m.start();
    await sched.advance(1000);
    expect(rec.progress).toEqual([{ ok: false, reason: 'scripted: probe error: bug in probe' }, { ok: true, detail: 'ok' }]);
    expect(rec.events).toEqual(['1000: healthy']);
    m.stop();
  });

  it('startPeriod: no pass by its end → unhealthy naming the period and the last error; a later pass → healthy', async () => {
    const steps: Step[] = [...Array.from({ length: 62 }, (_, i) => fail(`refused #${i}`)), pass()];
    const { sched, rec, m } = monitor(steps, { startPeriodMs: 60_000 });
    m.start();
    await sched.advance(59_999);
    expect(rec.events).toEqual([]);
    await sched.advance(1);
    // Attempts ran at 0..59s (60 results); the one at 60s is scheduled after the period timer.
    expect(rec.events).toEqual(['60000: unhealthy: no passing health check within startPeriod 60s: refused #59']);
    expect(m.state).toBe('unhealthy');
    await sched.advance(5_000);
    expect(rec.events.slice(1)).toEqual(['62000: healthy (recovered)']);
    m.stop();
  });

  it('startPeriod: failures inside it do not count even after a pass', async () => {
    const { sched, rec, m } = monitor([fail('a'), pass(), fail('inside')], { startPeriodMs: 10_000, retries: 1 });
    m.start();
    await sched.advance(9_999);
    expect(rec.events).toEqual(['1000: healthy']);
    await sched.advance(1); // t=10000: first failure outside the period
    expect(rec.events).toEqual(['1000: healthy', '10000: unhealthy: inside']);
    m.stop();
  });

  it('startPeriod shorter than the first attempt: says the attempt has not finished', async () => {
    const { sched, rec, m } = monitor([{ takeMs: 4000, then: { ok: true } }], { startPeriodMs: 1000, timeoutMs: 5000 });
    m.start();
    await sched.advance(1000);
    expect(rec.events).toEqual(['1000: unhealthy: no passing health check within startPeriod 1s: the first attempt has not finished']);
    await sched.advance(3000);
    expect(rec.events.at(-1)).toBe('4000: healthy (recovered)');
    m.stop();
  });

  it('stop(): no callback afterwards, even from an attempt in flight; timers cleared; probe closed', async () => {
    const { sched, probe, rec, m } = monitor([{ takeMs: 3000, then: { ok: true } }], { startPeriodMs: 60_000 });
    m.start();
    await sched.advance(1000);
    m.stop();
    m.stop();
    expect(sched.pending).toBe(1); // only the probe's own 3 s timer, which the monitor ignores
    await sched.advance(120_000);
    expect(rec.events).toEqual([]);
    expect(rec.progress).toEqual([]);
    expect(probe.starts).toHaveLength(1);
    expect(probe.closed).toBe(1);
    expect(m.state).toBe('stopped');
    m.start(); // no restart after stop
    await sched.advance(5000);
    expect(probe.starts).toHaveLength(1);
  });

  it('stop() from inside a callback ends the loop', async () => {
    const sched = new FakeScheduler();
    const probe = new ScriptedProbe(sched, [pass(), fail('x')]);
    const seen: string[] = [];
    const m = new HealthMonitor(
      probe,
      { intervalMs: 1000, timeoutMs: 5000, retries: 1, startPeriodMs: 0 },
      {
        onHealthy: () => seen.push('healthy'),
        onUnhealthy: (r) => {
          seen.push(`unhealthy: ${r}`);
          m.stop(); // what a unit does before restarting its process
        },
      },
      sched,
    );
    m.start();
    await sched.advance(10_000);
    expect(seen).toEqual(['healthy', 'unhealthy: x']);
    expect(probe.starts).toEqual([0, 1000]);
    expect(sched.pending).toBe(0);
  });

  it('runProbeOnce bounds one attempt and never rejects', async () => {
    const sched = new FakeScheduler();
    const hanging = runProbeOnce(new ScriptedProbe(sched, ['hang']), 1500, sched);
    await sched.advance(1500);
    expect(await hanging).toEqual({ ok: false, reason: 'scripted: timed out after 1.5s' });
    expect(await runProbeOnce(new ScriptedProbe(sched, ['throw']), 1500, sched)).toEqual({ ok: false, reason: 'scripted: probe error: bug in probe' });
    expect(await runProbeOnce(new ScriptedProbe(sched, [pass('fine')]), 1500, sched)).toEqual({ ok: true, detail: 'fine' });
    expect(sched.pending).toBe(0);
  });
});

describe('HealthMonitor (real timers, real socket)', () => {
  it('healthy when the port opens, unhealthy after `retries` failures when it closes, recovered when it reopens', async () => {
    const port = await freePort();
    const sockets = new Set<Socket>();
    let server: Server | undefined;
    const open = (): Promise<void> =>
      new Promise((resolve, reject) => {
        server = createServer((s) => {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.end();
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
    const shut = (): Promise<void> =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server?.close(() => resolve());
      });

    const events: string[] = [];
    let progress = 0;
    const m = new HealthMonitor(
      createTcpProbe({ tcp: port }, { unit: 'svc', cwd: '/', env: {}, onLogs: () => () => undefined }),
      { intervalMs: 50, timeoutMs: 2000, retries: 3, startPeriodMs: 0 },
      {
        onHealthy: ({ recovered }) => events.push(recovered ? 'recovered' : 'healthy'),
        onUnhealthy: (reason) => events.push(`unhealthy: ${reason}`),
        onProgress: () => progress++,
      },
    );
    try {
      m.start();
      await waitFor(() => progress >= 3, { message: 'three failing attempts' });
      expect(events).toEqual([]);
      expect(m.lastResult).toEqual({ ok: false, reason: `tcp 127.0.0.1:${port}: connection refused (nothing listening) [ECONNREFUSED]` });
      await open();
      await waitFor(() => events.length === 1, { message: 'healthy' });
      await shut();
      await waitFor(() => events.length === 2, { message: 'unhealthy' });
      expect(events[1]).toBe(`unhealthy: tcp 127.0.0.1:${port}: connection refused (nothing listening) [ECONNREFUSED]`);
      await open();
      await waitFor(() => events.length === 3, { message: 'recovered' });
      expect(events).toEqual(['healthy', events[1], 'recovered']);
    } finally {
      m.stop();
      await shut();
    }
  });
});
