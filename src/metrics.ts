// `/metrics` in the Prometheus text format (prom-client), one registry per daemon:
//
//   bksup_unit_info{unit,kind}                       1 per configured unit
//   bksup_unit_up{unit}                              1 when healthy, completed or skipped (doing its job)
//   bksup_unit_state{unit,state}                     1 for the current state, 0 for every other one
//   bksup_unit_restarts_total{unit}                  automatic restarts (the `restarts` of GET /api/units)
//   bksup_unit_last_exit_code{unit}                  code of the last exit, kept across restarts
//                                                    (128 + signal number for a kill; absent before any)
//   bksup_health_check_duration_seconds{unit}        histogram of every probe attempt
//   bksup_health_check_failures_total{unit}          failed probe attempts
//   bksup_log_lines_total{unit,stream}               lines of output (stdout, stderr, system)
//   bksup_log_bytes_total{unit,stream}               bytes of output, newlines included
//   bksup_ws_clients{endpoint}                       WebSocket clients of /api/logs and /api/events
//   bksup_ws_dropped_lines_total                     lines log clients were told (gap) no longer exist
//   process_*, nodejs_*                              the daemon's own process (prom-client defaults)
//
// Unit values come from one snapshot taken at scrape time, so a scrape is consistent with itself
// and with GET /api/units. Log counts are plain numbers bumped once per batch on the bus (the log
// path is hot: no per-line label lookups); probe attempts arrive on the bus's probe channel.
//
// prom-client itself (with its cluster, push-gateway and default-metrics modules, ~6 MiB of a
// daemon that is otherwise ~55 MiB) is imported at the first scrape: until somebody scrapes,
// every figure lives in the plain maps below, and the registry's metrics read them at collect
// time, so nothing counted before the first scrape is lost.

import { constants } from 'node:os';
import type { Histogram as HistogramT, Registry as RegistryT } from 'prom-client';
import type { MetricsEndpoint, ControlServerStats } from './control/server.ts';
import type { EventBus, LogBatch, LogStream, ProbeAttempt, StateEvent, UnitStateName } from './events.ts';
import type { UnitSnapshot } from './units/types.ts';

export const UNIT_STATES: readonly UnitStateName[] = ['disabled', 'pending', 'starting', 'running', 'healthy', 'unhealthy', 'backoff', 'stopping', 'stopped', 'completed', 'skipped', 'failed'];
const UP_STATES: ReadonlySet<UnitStateName> = new Set<UnitStateName>(['healthy', 'completed', 'skipped']);

/** Probe attempts take from a millisecond (tcp) to the timeout (5 s by default, 30 s for slow pages). */
export const HEALTH_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const HEALTH_NAME = 'bksup_health_check_duration_seconds';
const HEALTH_HELP = 'Duration of each health-check attempt.';

/** prom-client's Registry.PROMETHEUS_CONTENT_TYPE, known before prom-client is loaded. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsOptions {
  handle: { readonly bus: EventBus; snapshot(): UnitSnapshot[] };
  /** prom-client's process and Node.js metrics for this process (default true). */
  processMetrics?: boolean;
}

interface LogTally {
  lines: number;
  bytes: number;
}

/** One unit's probe attempts: what prom-client's histogram would hold, plus the failures. */
interface ProbeTally {
  /** Attempts per bucket of HEALTH_BUCKETS (not cumulative; longer than the last bound: only in count). */
  buckets: number[];
  sum: number;
  count: number;
  failures: number;
}

type PromClient = typeof import('prom-client');

export class SupervisorMetrics implements MetricsEndpoint {
  readonly contentType = CONTENT_TYPE;
  readonly #handle: MetricsOptions['handle'];
  readonly #unsubscribe: (() => void)[] = [];
  /** unit → stream → tally. */
  readonly #logs = new Map<string, Map<LogStream, LogTally>>();
  /** The snapshot forgets an exit code once the unit starts again; a scrape should not. */
  readonly #lastExit = new Map<string, number>();
  readonly #probes = new Map<string, ProbeTally>();
  /** Set for the duration of one render: every collect reads the same snapshot. */
  #snapshot: UnitSnapshot[] = [];
  #ws: ControlServerStats | undefined;
  #rendering: Promise<string> | undefined;
  /** Made at the first render (see the file comment). */
  #registry: RegistryT | undefined;
  #loading: Promise<RegistryT> | undefined;
  readonly #processMetrics: boolean;
  #closed = false;

  constructor(opts: MetricsOptions) {
    this.#handle = opts.handle;
    this.#processMetrics = opts.processMetrics !== false;
    const bus = opts.handle.bus;
    this.#unsubscribe.push(bus.onLogs((b) => this.#onLogs(b)));
    this.#unsubscribe.push(bus.onProbe((a) => this.#onProbe(a)));
    this.#unsubscribe.push(
      bus.onEvent((e) => {
        if (e.type === 'state') this.#onState(e);
      }),
    );
  }

  /** The prom-client registry; exists from the first render on. */
  get registry(): RegistryT {
    if (!this.#registry) throw new Error('SupervisorMetrics.registry is made by the first render()');
    return this.#registry;
  }

  #load(): Promise<RegistryT> {
    this.#loading ??= import('prom-client').then((pc) => {
      const registry = this.#build(pc);
      // Node's process metrics start with the first scrape, not with the daemon: their event-loop
      // lag histogram wakes the loop every 10 ms and their GC observer runs on every collection,
      // which made an idle daemon with nobody scraping burn ~0.05 CPU-s per 10 s.
      if (this.#processMetrics && !this.#closed) pc.collectDefaultMetrics({ register: registry });
      this.#registry = registry;
      return registry;
    });
    return this.#loading;
  }

  #build(pc: PromClient): RegistryT {
    const { Counter, Gauge, Histogram, Registry } = pc;
    const registry = new Registry();
    const registers = [registry];
    // prom-client calls collect() with the metric as `this`; arrow functions would lose it.
    const units = (): UnitSnapshot[] => this.#snapshot;
    const logs = (): Map<string, Map<LogStream, LogTally>> => this.#logs;
    const probes = (): Map<string, ProbeTally> => this.#probes;
    const ws = (): ControlServerStats | undefined => this.#ws;
    const lastExit = (u: UnitSnapshot): number | undefined => u.exitCode ?? this.#lastExit.get(u.name);

    new Gauge({
      name: 'bksup_unit_info',
      help: 'One series per configured unit, with its kind.',
      labelNames: ['unit', 'kind'] as const,
      registers,
      collect() {
        this.reset();
        for (const u of units()) this.set({ unit: u.name, kind: u.kind }, 1);
      },
    });
    new Gauge({
      name: 'bksup_unit_up',
      help: 'Whether the unit is doing its job: 1 when healthy (or a task completed or skipped), else 0.',
      labelNames: ['unit'] as const,
      registers,
      collect() {
        this.reset();
        for (const u of units()) this.set({ unit: u.name }, UP_STATES.has(u.state) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'bksup_unit_state',
      help: 'The unit state: 1 for the current state, 0 for the others.',
      labelNames: ['unit', 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const u of units()) for (const s of UNIT_STATES) this.set({ unit: u.name, state: s }, u.state === s ? 1 : 0);
      },
    });
    new Counter({
      name: 'bksup_unit_restarts_total',
      help: 'Automatic restarts of the unit by its restart policy.',
      labelNames: ['unit'] as const,
      registers,
      collect() {
        this.reset();
        for (const u of units()) this.inc({ unit: u.name }, u.restarts);
      },
    });
    new Gauge({
      name: 'bksup_unit_last_exit_code',
      help: 'Exit code of the last exit of the unit, 128 + signal number when killed by a signal (absent before the first exit).',
      labelNames: ['unit'] as const,
      registers,
      collect() {
        this.reset();
        for (const u of units()) {
          const code = lastExit(u);
          if (code !== undefined) this.set({ unit: u.name }, code);
        }
      },
    });
    /**
     * prom-client's Histogram has no way to set its state, so this one renders the tallies
     * kept since the daemon started, in the shape Histogram itself produces (cumulative `le`
     * buckets, then +Inf, _sum and _count per unit).
     */
    class TallyHistogram extends Histogram<'unit'> {
      async getForPromString(): Promise<Awaited<ReturnType<HistogramT<'unit'>['get']>>> {
        const values: { labels: Record<string, string | number>; sharedLabels: Record<string, string>; value: number; metricName: string }[] = [];
        for (const [unit, t] of probes()) {
          const shared = { unit };
          let acc = 0;
          HEALTH_BUCKETS.forEach((le, i) => {
            acc += t.buckets[i] ?? 0;
            values.push({ labels: { le }, sharedLabels: shared, value: acc, metricName: `${HEALTH_NAME}_bucket` });
          });
          values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: t.count, metricName: `${HEALTH_NAME}_bucket` });
          values.push({ labels: {}, sharedLabels: shared, value: t.sum, metricName: `${HEALTH_NAME}_sum` });
          values.push({ labels: {}, sharedLabels: shared, value: t.count, metricName: `${HEALTH_NAME}_count` });
        }
        return { name: HEALTH_NAME, help: HEALTH_HELP, type: 'histogram', values, aggregator: 'sum' } as unknown as Awaited<ReturnType<HistogramT<'unit'>['get']>>;
      }
    }
    new TallyHistogram({
      name: HEALTH_NAME,
      help: HEALTH_HELP,
      labelNames: ['unit'] as const,
      buckets: HEALTH_BUCKETS,
      registers,
    });
    new Counter({
      name: 'bksup_health_check_failures_total',
      help: 'Failed health-check attempts.',
      labelNames: ['unit'] as const,
      registers,
      collect() {
        this.reset();
        // Zero until the first failure, so a rate over it exists from the first attempt on.
        for (const [unit, t] of probes()) this.inc({ unit }, t.failures);
      },
    });
    new Counter({
      name: 'bksup_log_lines_total',
      help: 'Lines of output of the unit, per stream (system = lines of the supervisor about the unit).',
      labelNames: ['unit', 'stream'] as const,
      registers,
      collect() {
        this.reset();
        for (const [unit, streams] of logs()) for (const [stream, t] of streams) this.inc({ unit, stream }, t.lines);
      },
    });
    new Counter({
      name: 'bksup_log_bytes_total',
      help: 'Bytes of output of the unit (UTF-8, newlines included), per stream.',
      labelNames: ['unit', 'stream'] as const,
      registers,
      collect() {
        this.reset();
        for (const [unit, streams] of logs()) for (const [stream, t] of streams) this.inc({ unit, stream }, t.bytes);
      },
    });
    new Gauge({
      name: 'bksup_ws_clients',
      help: 'Connected WebSocket clients per endpoint.',
      labelNames: ['endpoint'] as const,
      registers,
      collect() {
        const s = ws();
        this.set({ endpoint: 'logs' }, s?.logClients.length ?? 0);
        this.set({ endpoint: 'events' }, s?.eventClients ?? 0);
      },
    });
    new Counter({
      name: 'bksup_ws_dropped_lines_total',
      help: 'Log lines WebSocket clients were told (with a gap frame) no longer exist: rotated away or deleted before they read them.',
      registers,
      collect() {
        this.reset();
        this.inc(ws()?.droppedLinesTotal ?? 0);
      },
    });
    return registry;
  }

  #onState(e: StateEvent): void {
    if (typeof e.exitCode === 'number') this.#lastExit.set(e.unit, e.exitCode);
    else if (e.signal) {
      const n = (constants.signals as Record<string, number | undefined>)[e.signal];
      if (n !== undefined) this.#lastExit.set(e.unit, 128 + n);
    }
  }

  #onLogs(batch: LogBatch): void {
    let streams = this.#logs.get(batch.unit);
    if (!streams) {
      streams = new Map();
      this.#logs.set(batch.unit, streams);
    }
    let t = streams.get(batch.stream);
    if (!t) {
      t = { lines: 0, bytes: 0 };
      streams.set(batch.stream, t);
    }
    const raw = batch.raw;
    if (raw !== undefined) {
      t.lines += raw.count;
      t.bytes += raw.length; // the newlines included, as below
      return;
    }
    let bytes = batch.lines.length; // the newlines
    for (const line of batch.lines) bytes += Buffer.byteLength(line);
    t.lines += batch.lines.length;
    t.bytes += bytes;
  }

  #onProbe(a: ProbeAttempt): void {
    let t = this.#probes.get(a.unit);
    if (!t) {
      t = { buckets: new Array<number>(HEALTH_BUCKETS.length).fill(0), sum: 0, count: 0, failures: 0 };
      this.#probes.set(a.unit, t);
    }
    const seconds = Math.max(0, a.durationMs) / 1000;
    const i = HEALTH_BUCKETS.findIndex((le) => seconds <= le);
    if (i >= 0) t.buckets[i] = (t.buckets[i] ?? 0) + 1;
    t.sum += seconds;
    t.count++;
    if (!a.ok) t.failures++;
  }

  /** The exposition text; the WebSocket numbers come from the control server of this scrape. */
  async render(ws?: ControlServerStats): Promise<string> {
    const registry = this.#registry ?? (await this.#load());
    // One render at a time: the snapshot and ws fields belong to the render that set them.
    while (this.#rendering) await this.#rendering.catch(() => undefined);
    this.#snapshot = this.#handle.snapshot();
    this.#ws = ws;
    this.#rendering = registry.metrics();
    try {
      return await this.#rendering;
    } finally {
      this.#rendering = undefined;
    }
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe.length = 0;
    this.#registry?.clear();
  }
}
