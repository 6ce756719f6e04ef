// A virtual clock for code that takes a Scheduler (src/health/monitor.ts): timers fire only when
// the test advances time, in due order, with promise callbacks flushed between them — so
// interval/timeout/startPeriod maths is tested without sleeping.

import type { Scheduler, TimerHandle } from '../../src/health/monitor.ts';

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

/** Lets every pending promise callback (and their follow-ups) run: one macrotask turn, twice. */
export async function flushPromises(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class FakeScheduler implements Scheduler {
  #now: number;
  #nextId = 1;
  #timers: Timer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: Timer = { id: this.#nextId++, due: this.#now + Math.max(0, ms), fn };
    this.#timers.push(t);
    return t.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers still scheduled. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * The process was stopped for `ms` (suspend, SIGSTOP): the clock jumps, and every timer that
   * fell due meanwhile fires only now, late, in due order — as Node's timers do on wake-up.
   */
  async pause(ms: number): Promise<void> {
    this.#now += ms;
    await flushPromises();
    for (;;) {
      const due = this.#timers.filter((t) => t.due <= this.#now).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      due.fn();
      await flushPromises();
    }
  }

  /** Moves the clock forward by `ms`, firing due timers in order (ties: scheduling order). */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flushPromises();
    for (;;) {
      const due = this.#timers.filter((t) => t.due <= target).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.due;
      due.fn();
      await flushPromises();
    }
    this.#now = target;
    await flushPromises();
  }
}
