// A probe is one small function: try once, within the signal's deadline, and say how it went.
// Expected failures are values, never exceptions. Each probe kind lives in its own file
// (src/health/<kind>.ts) and registers a factory in src/health/registry.ts.

import type { LogBatch } from '../events.ts';

export type ProbeResult = { ok: true; detail?: string } | { ok: false; reason: string };

/** What a probe may need from the unit it watches. */
export interface ProbeContext {
  unit: string;
  /** Working directory for `exec` probes. */
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** Subscribe to this unit's own output (for `log` probes); returns an unsubscribe function. */
  onLogs: (fn: (batch: LogBatch) => void) => () => void;
  /** Container id of a compose unit, when known (for `docker: true`). */
  containerId?: () => string | undefined;
  /**
   * The healthcheck's per-attempt bound, for probes that hand a deadline to a client library
   * (pg `connectionTimeoutMillis`/`statement_timeout`, the NATS connect timeout) so the server side
   * gives up too. The AbortSignal passed to `check` stays the authority; default 5000.
   */
  timeoutMs?: number;
}

export interface Probe {
  /** Short human label without secrets, e.g. `http GET http://127.0.0.1:18001/admin/login/`. */
  readonly label: string;
  /** One attempt. Must settle by the time `signal` aborts and must release every socket/fd it opened. */
  check(signal: AbortSignal): Promise<ProbeResult>;
  /** Release long-lived resources (log subscriptions). */
  close?(): void;
}
