// What the outside (control API, CLI status, dashboard) may see of and do to the running stack.

import type { UnitKind } from '../config/types.ts';
import type { EventBus, LogStream, UnitStateName } from '../events.ts';
import type { UnitTerminal } from './terminal.ts';

/** The row of `GET /api/units` and `bksup status --json`. Contains no secrets. */
export interface UnitSnapshot {
  name: string;
  kind: UnitKind;
  state: UnitStateName;
  pid: number | null;
  restarts: number;
  /** Last probe outcome: 'passing', 'failing: <error>', or null without a healthcheck. */
  health: string | null;
  /** ms since epoch of the last state change. */
  since: number;
  exitCode: number | null;
  reason: string | null;
  dependsOn: Record<string, string>;
  /** Compose container that was running before the supervisor started; left running on exit. */
  adopted?: boolean;
  /** A task whose failure blocks nothing (`optional: true`); `status` warns when it failed. */
  optional?: boolean;
  /**
   * Live processes of a process or task unit, detached ones included (only in `GET /api/units`,
   * counted from one /proc scan made at most every PROCESS_COUNT_MS).
   */
  processes?: number;
  /** `tty: true` units: whether a `bksup attach` is connected to its terminal. */
  tty?: { attached: boolean };
}

export interface LogLine {
  unit: string;
  stream: LogStream;
  seq: number;
  ts: number;
  line: string;
}

export type ControlResult = { ok: true } | { ok: false; status: 404 | 409; error: string };

export type TerminalLookup = { ok: true; terminal: UnitTerminal } | { ok: false; status: 404 | 409; error: string };

/** The supervisor as the control plane sees it. */
export interface SupervisorHandle {
  readonly bus: EventBus;
  /** Unit names in dependency order. */
  unitNames(): readonly string[];
  /** `processes`: fill in each unit's process count (a /proc scan: for the API, not for internal use). */
  snapshot(opts?: { processes?: boolean }): UnitSnapshot[];
  start(unit: string): ControlResult;
  stop(unit: string): ControlResult;
  restart(unit: string): ControlResult;
  /** The terminal of a `tty: true` unit, for `bksup attach` (optional: test doubles omit it). */
  terminal?(unit: string): TerminalLookup;
  /** Stops everything in reverse dependency order; resolves when all is stopped. */
  shutdown(reason: string): Promise<void>;
}
