// The crash-loop budget at its edges, with the clock values a real daemon passes (epoch ms, not
// small numbers near 0), and the reason `status` shows when it gives up. Found by mutation testing
// (`npm run mutation restart-policy`): each case fails if the budget's arithmetic is changed.
import { describe, expect, it } from 'vitest';
import type { ResolvedRestart } from '../src/config/types.ts';
import { RestartBudget } from '../src/restart-policy.ts';

const base: ResolvedRestart = { policy: 'always', initialMs: 100, maxMs: 30_000, factor: 2, jitter: 0.1, maxRestarts: 3, windowMs: 10_000 };
const T0 = 1_764_000_000_000; // an epoch time, as Date.now() gives the daemon
const crash = (now: number, ranMs = 50) => ({ failed: true, ranMs, now });

describe('RestartBudget at its edges', () => {
  it('stops a crash loop with a real clock: epoch timestamps, restarts a few ms apart', () => {
    const b = new RestartBudget(base, () => 0.5);
    const actions = [0, 5, 10, 15].map((dt) => b.decide(crash(T0 + dt)).action);
    expect(actions).toEqual(['restart', 'restart', 'restart', 'give-up']);
  });

  it('says in the reason how many exits happened in which window, and the setting to change', () => {
    const cases: [number, string][] = [
      [10_000, '10s'],
      [300_000, '5m'],
      [1500, '1500ms'],
    ];
    for (const [windowMs, shown] of cases) {
      const b = new RestartBudget({ ...base, windowMs }, () => 0.5);
      for (let i = 0; i < 3; i++) b.decide(crash(T0 + i));
      expect(b.decide(crash(T0 + 3))).toEqual({ action: 'give-up', why: `crash loop: 4 exits within ${shown} (restart.maxRestarts is 3)` });
    }
  });

  it('a restart exactly one window ago no longer counts; one a millisecond younger still does', () => {
    const edge = new RestartBudget({ ...base, maxRestarts: 1 }, () => 0.5);
    expect(edge.decide(crash(T0)).action).toBe('restart');
    expect(edge.decide(crash(T0 + 10_000)).action).toBe('restart');
    const inside = new RestartBudget({ ...base, maxRestarts: 1 }, () => 0.5);
    expect(inside.decide(crash(T0)).action).toBe('restart');
    expect(inside.decide(crash(T0 + 9_999)).action).toBe('give-up');
  });

  it('only a run longer than the window resets the backoff; one exactly as long does not', () => {
    const b = new RestartBudget({ ...base, maxRestarts: 10 }, () => 0.5);
    b.decide(crash(T0));
    expect(b.decide(crash(T0 + 20_000, 10_000))).toMatchObject({ action: 'restart', attempt: 2, delayMs: 200 });
    expect(b.decide(crash(T0 + 40_000, 10_001))).toMatchObject({ action: 'restart', attempt: 1, delayMs: 100 });
  });

  it('a manual restart (reset) clears the crash history and the backoff', () => {
    const b = new RestartBudget(base, () => 0.5);
    for (let i = 0; i < 3; i++) b.decide(crash(T0 + i));
    b.reset();
    expect(b.decide(crash(T0 + 3))).toEqual({ action: 'restart', delayMs: 100, attempt: 1 });
    expect(b.total).toBe(4);
  });

  it('after thousands of restarts (factor ** attempt overflows) the delay is still the cap, whatever the jitter', () => {
    for (const r of [0, 0.5, 1]) expect(new RestartBudget(base, () => r).delayFor(5000), `random ${r}`).toBe(30_000);
  });

  it('a policy stop is a stop, not a give-up', () => {
    expect(new RestartBudget({ ...base, policy: 'never' }).decide(crash(T0))).toEqual({ action: 'stop', why: 'policy' });
  });
});
