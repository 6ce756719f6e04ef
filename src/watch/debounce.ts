// Collects the paths of a burst of changes and fires once, `quietMs` after the last one: a
// `git checkout` touching 500 files, or an editor's write-rename-chmod, is one restart.
// The clock is passed in so the burst rule is tested without sleeping.

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class Burst {
  readonly #quietMs: number;
  readonly #fire: (paths: string[]) => void;
  readonly #clock: Clock;
  #paths = new Set<string>();
  #timer: unknown;

  constructor(quietMs: number, fire: (paths: string[]) => void, clock: Clock = realClock) {
    this.#quietMs = quietMs;
    this.#fire = fire;
    this.#clock = clock;
  }

  add(paths: Iterable<string>): void {
    for (const p of paths) this.#paths.add(p);
    if (this.#paths.size === 0) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => this.#flush(), this.#quietMs);
  }

  cancel(): void {
    this.take();
  }

  /** The paths gathered and not fired yet; the burst forgets them (another one takes them over). */
  take(): string[] {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const paths = [...this.#paths];
    this.#paths.clear();
    return paths;
  }

  #flush(): void {
    this.#timer = undefined;
    const paths = [...this.#paths].sort();
    this.#paths.clear();
    if (paths.length) this.#fire(paths);
  }
}
