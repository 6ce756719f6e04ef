import { describe, expect, it } from 'vitest';
import type { ResolvedRestart } from '../src/config/types.ts';
import { RestartBudget } from '../src/restart-policy.ts';

const base: ResolvedRestart = { policy: 'always', initialMs: 100, maxMs: 30_000, factor: 2, jitter: 0.1, maxRestarts: 10, windowMs: 300_000 };

describe('RestartBudget', () => {
  it('grows the delay exponentially up to max, jitter within ±10%', () => {
    const mid = new RestartBudget(base, () => 0.5); // 0.5 = no jitter
    const delays = Array.from({ length: 12 }, (_, i) => {
      const d = mid.decide({ failed: true, ranMs: 10, now: i * 10 });
      return d.action === 'restart' ? d.delayMs : -1;
    });
    expect(delays.slice(0, 10)).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000]);
    const low = new RestartBudget(base, () => 0);
    const high = new RestartBudget(base, () => 1);
    expect(low.delayFor(1)).toBe(90);
    expect(high.delayFor(1)).toBe(110);
    expect(high.delayFor(20)).toBe(30_000); // jitter never exceeds max
  });

  it('delays strictly grow even with worst-case jitter', () => {
    // The worst case for growth: one delay jittered fully up, the next fully down.
    const high = new RestartBudget(base, () => 1);
    const low = new RestartBudget(base, () => 0);
    for (let a = 1; high.delayFor(a) < base.maxMs; a++) {
      expect(low.delayFor(a + 1), `attempt ${a + 1} at -jitter vs attempt ${a} at +jitter`).toBeGreaterThan(high.delayFor(a));
    }
    // The same through decide(), with the random source alternating between its extremes.
    let flip = false;
    const alternating = new RestartBudget(base, () => {
      flip = !flip;
      return flip ? 1 : 0;
    });
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      const d = alternating.decide({ failed: true, ranMs: 10, now: i * 10 });
      if (d.action === 'restart') delays.push(d.delayMs);
    }
    const belowMax = delays.filter((d) => d < base.maxMs);
    expect(belowMax.length).toBeGreaterThanOrEqual(8);
    for (let i = 1; i < belowMax.length; i++) expect(belowMax[i]).toBeGreaterThan(belowMax[i - 1]!);
    expect(delays.at(-1)).toBe(base.maxMs);
  });

  it('gives up after maxRestarts restarts inside the window', () => {
    const b = new RestartBudget({ ...base, maxRestarts: 3, windowMs: 10_000 }, () => 0.5);
    const actions = [0, 100, 200, 300].map((now) => b.decide({ failed: true, ranMs: 50, now }).action);
    expect(actions).toEqual(['restart', 'restart', 'restart', 'give-up']);
    expect(b.total).toBe(3);
  });

  it('forgets old restarts once they leave the window, and a long run resets the backoff', () => {
    const b = new RestartBudget({ ...base, maxRestarts: 2, windowMs: 1000 }, () => 0.5);
    expect(b.decide({ failed: true, ranMs: 10, now: 0 }).action).toBe('restart');
    expect(b.decide({ failed: true, ranMs: 10, now: 500 }).action).toBe('restart');
    // 2000 ms later both restarts are outside the window.
    const d = b.decide({ failed: true, ranMs: 10, now: 2500 });
    expect(d).toMatchObject({ action: 'restart', attempt: 3 });
    // A run longer than the window resets the exponent to the first delay.
    expect(b.decide({ failed: true, ranMs: 5000, now: 9000 })).toMatchObject({ action: 'restart', attempt: 1, delayMs: 100 });
  });

  it('follows the policy: never, on-failure with a clean exit', () => {
    expect(new RestartBudget({ ...base, policy: 'never' }).decide({ failed: true, ranMs: 1, now: 0 }).action).toBe('stop');
    expect(new RestartBudget({ ...base, policy: 'on-failure' }).decide({ failed: false, ranMs: 1, now: 0 }).action).toBe('stop');
    expect(new RestartBudget({ ...base, policy: 'on-failure' }).decide({ failed: true, ranMs: 1, now: 0 }).action).toBe('restart');
    expect(new RestartBudget({ ...base, policy: 'always' }).decide({ failed: false, ranMs: 1, now: 0 }).action).toBe('restart');
  });
});

describe('zero backoff', () => {
  it('restarts at once and still gives up at the budget', () => {
    const b = new RestartBudget({ ...base, initialMs: 0, maxMs: 0, maxRestarts: 2 }, () => 1);
    expect(b.decide({ failed: true, ranMs: 1, now: 0 })).toMatchObject({ action: 'restart', delayMs: 0 });
    expect(b.decide({ failed: true, ranMs: 1, now: 1 })).toMatchObject({ action: 'restart', delayMs: 0 });
    expect(b.decide({ failed: true, ranMs: 1, now: 2 }).action).toBe('give-up');
  });
});
