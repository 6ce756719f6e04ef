// What the supervisor log is told before it is open. Loading pino costs ~30 ms of CPU, and the
// daemon opens supervisor.log only once the first units are starting: until then messages and
// bus events wait here, and reach the log in the order they happened when it opens.

import type { EventBus, SupervisorEvent } from '../events.ts';

export type LogLevel = 'info' | 'warn' | 'error';

/** The part of a pino logger the daemon uses before the log is open. */
export interface LevelLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

type Entry = { level: LogLevel; args: [object | string, string?] } | { event: SupervisorEvent };

export class EarlyLog implements LevelLogger {
  #queue: Entry[] | undefined = [];
  #target: LevelLogger | undefined;
  readonly #off: () => void;

  constructor(bus: EventBus) {
    this.#off = bus.onEvent((event) => this.#queue?.push({ event }));
  }

  #log(level: LogLevel, args: [object | string, string?]): void {
    if (this.#target) this.#target[level](...args);
    else this.#queue?.push({ level, args });
  }

  info(obj: object | string, msg?: string): void {
    this.#log('info', [obj, msg]);
  }

  warn(obj: object | string, msg?: string): void {
    this.#log('warn', [obj, msg]);
  }

  error(obj: object | string, msg?: string): void {
    this.#log('error', [obj, msg]);
  }

  /**
   * Writes what waited, in order, then passes everything on: later calls go to `logger`, and
   * `attach` (called here, in the same tick) subscribes the log to the bus's events.
   */
  open<L extends LevelLogger>(logger: L, logEvent: (logger: L, event: SupervisorEvent) => void, attach: () => void): void {
    const queue = this.#queue ?? [];
    this.#queue = undefined;
    this.#off();
    for (const e of queue) {
      if ('event' in e) logEvent(logger, e.event);
      else if (e.args[1] === undefined) logger[e.level](e.args[0]);
      else logger[e.level](e.args[0], e.args[1]);
    }
    this.#target = logger;
    attach();
  }
}
