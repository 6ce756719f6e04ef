// /metrics in the Prometheus text format, checked with real parsers (promtool for validity,
// parse-prometheus-text-format for values, never a regex):
//   - the collector on a real EventBus: log counts and bytes per stream, probe histograms and
//     failures, states, restarts, last exit codes (kept across restarts; 128+n for a signal)
//   - a real daemon (`bksup up`) with fixture processes: after a forced restart (SIGKILL) and a
//     crash loop, every counter matches GET /api/units, log line counts match the seqs of the
//     log stream, ws clients are counted, and the daemon's own process metrics are there
//   - a real Prometheus server scrapes it with the bearer token and agrees

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { EventBus } from '../src/events.ts';
import { HealthMonitor } from '../src/health/monitor.ts';
import type { Probe, ProbeResult } from '../src/health/types.ts';
import { SupervisorMetrics, UNIT_STATES } from '../src/metrics.ts';
import { FakeScheduler } from './helpers/fake-scheduler.ts';
import { FakeSupervisor, LinePublisher } from './fixtures/control/harness.ts';
import { controlFile, runCli, startCli, writeConfig, type RunningCli } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { familyType, parseMetrics, promtoolCheck, samples, value } from './helpers/prometheus.ts';
import { waitFor } from './helpers/wait.ts';

/** promtool lints prom-client's own Node.js metrics (gauges named *_total); ours must be clean. */
function expectValid(text: string): void {
  const r = promtoolCheck(text);
  const ours = r.problems.filter((p) => !/^nodejs_/.test(p));
  expect(r.code === 0 || r.code === 3, `promtool exit ${r.code}:\n${r.problems.join('\n')}`).toBe(true);
  expect(ours, 'lint problems outside prom-client defaults').toEqual([]);
}

describe('SupervisorMetrics on a real bus', () => {
  it('counts lines and bytes per unit and stream, probe attempts, states, restarts and exits', async () => {
    const bus = new EventBus();
    const sup = new FakeSupervisor([{ name: 'postgres', kind: 'compose' }, { name: 'server' }, { name: 'web', state: 'stopped' }], bus);
    const m = new SupervisorMetrics({ handle: sup, processMetrics: false });
    const out = new LinePublisher(bus, 'stdout');
    new LinePublisher(bus, 'stderr').publish('server', ['oops']);
    out.publish('server', ['a', 'bé', 'ccc']); // 'bé' is 3 bytes in UTF-8
    out.publish('postgres', ['ready']);
    bus.publishProbe({ unit: 'server', durationMs: 20, ok: true });
    bus.publishProbe({ unit: 'server', durationMs: 3000, ok: false });
    bus.publishProbe({ unit: 'postgres', durationMs: 1, ok: true });
    sup.restart('server');
    bus.publishEvent({ type: 'state', unit: 'web', kind: 'process', state: 'backoff', prev: 'running', ts: Date.now(), exitCode: 3 });
    bus.publishEvent({ type: 'state', unit: 'postgres', kind: 'compose', state: 'backoff', prev: 'running', ts: Date.now(), exitCode: null, signal: 'SIGKILL' });

    const text = await m.render({ logClients: [], eventClients: 2, sockets: 3, pendingSockets: 1, evictedSockets: 0, droppedLinesTotal: 17 });
    expectValid(text);
    const f = parseMetrics(text);
    expect(value(f, 'bksup_log_lines_total', { unit: 'server', stream: 'stdout' })).toBe(3);
    expect(value(f, 'bksup_log_lines_total', { unit: 'server', stream: 'stderr' })).toBe(1);
    expect(value(f, 'bksup_log_bytes_total', { unit: 'server', stream: 'stdout' })).toBe(1 + 3 + 3 + 3);
    expect(value(f, 'bksup_log_bytes_total', { unit: 'server', stream: 'stderr' })).toBe(5);
    expect(value(f, 'bksup_log_lines_total', { unit: 'postgres', stream: 'stdout' })).toBe(1);
    expect(familyType(f, 'bksup_log_lines_total')).toBe('COUNTER');

    // The npm parser folds labelled histograms together: their values are read from prom-client
    // itself here, and from a real Prometheus in the daemon test below.
    expect(familyType(f, 'bksup_health_check_duration_seconds')).toBe('HISTOGRAM');
    const hist = await m.registry.getSingleMetric('bksup_health_check_duration_seconds')!.get();
    const of = (name: string, labels: Record<string, string | number>): number | undefined =>
      (hist.values as { metricName?: string; labels: Record<string, string | number>; value: number }[]).find((v) => v.metricName === name && Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
    expect(of('bksup_health_check_duration_seconds_count', { unit: 'server' })).toBe(2);
    expect(of('bksup_health_check_duration_seconds_sum', { unit: 'server' })).toBeCloseTo(3.02, 5);
    expect(of('bksup_health_check_duration_seconds_bucket', { unit: 'server', le: 0.025 })).toBe(1);
    expect(of('bksup_health_check_duration_seconds_bucket', { unit: 'server', le: '+Inf' })).toBe(2);
    expect(value(f, 'bksup_health_check_failures_total', { unit: 'server' })).toBe(1);
    expect(value(f, 'bksup_health_check_failures_total', { unit: 'postgres' })).toBe(0);

    expect(value(f, 'bksup_unit_restarts_total', { unit: 'server' })).toBe(1);
    expect(value(f, 'bksup_unit_restarts_total', { unit: 'web' })).toBe(0);
    expect(value(f, 'bksup_unit_last_exit_code', { unit: 'web' })).toBe(3);
    expect(value(f, 'bksup_unit_last_exit_code', { unit: 'postgres' })).toBe(128 + 9);
    expect(value(f, 'bksup_unit_last_exit_code', { unit: 'server' })).toBeUndefined();
    // One series per state per unit, exactly one of them 1.
    for (const u of sup.snapshot()) {
      const states = samples(f, 'bksup_unit_state', { unit: u.name });
      expect(states.map((s) => s.labels?.state).sort()).toEqual([...UNIT_STATES].sort());
      expect(states.filter((s) => s.value === '1').map((s) => s.labels?.state)).toEqual([u.state]);
    }
    expect(value(f, 'bksup_unit_up', { unit: 'server' })).toBe(0); // running, not healthy
    expect(value(f, 'bksup_unit_info', { unit: 'postgres', kind: 'compose' })).toBe(1);
    expect(value(f, 'bksup_ws_clients', { endpoint: 'events' })).toBe(2);
    expect(value(f, 'bksup_ws_clients', { endpoint: 'logs' })).toBe(0);
    expect(value(f, 'bksup_ws_dropped_lines_total')).toBe(17);
    m.close();
  });

  it('label values with quotes, backslashes and newlines stay valid exposition', async () => {
    const bus = new EventBus();
    const sup = new FakeSupervisor([{ name: 'a' }], bus);
    const m = new SupervisorMetrics({ handle: sup, processMetrics: false });
    // Unit names are validated by the config; probe and log events carry whatever they carry.
    bus.publishLogs({ unit: 'we"ird\\unit\nx', stream: 'stdout', firstSeq: 1, ts: Date.now(), lines: ['x'] });
    const text = await m.render();
    expectValid(text);
    expect(value(parseMetrics(text), 'bksup_log_lines_total', { stream: 'stdout' })).toBe(1);
    m.close();
  });
});

describe('HealthMonitor onAttempt (what feeds the histogram)', () => {
  it("reports each attempt's duration on the monitor's clock and its outcome, timeouts included", async () => {
    const sched = new FakeScheduler(5_000);
    const steps: { ms: number; ok: boolean }[] = [
      { ms: 40, ok: false },
      { ms: 120, ok: true },
      { ms: 99_999, ok: true }, // never in time: the 1 s timeout ends it
    ];
    const probe: Probe = {
      label: 'timed',
      check: (signal) =>
        new Promise<ProbeResult>((resolve) => {
          const step = steps.shift() ?? { ms: 10, ok: true };
          sched.setTimeout(() => resolve(step.ok ? { ok: true } : { ok: false, reason: 'nope' }), step.ms);
          signal.addEventListener('abort', () => resolve({ ok: false, reason: 'aborted' }), { once: true });
        }),
    };
    const attempts: { durationMs: number; ok: boolean }[] = [];
    const m = new HealthMonitor(probe, { intervalMs: 100, timeoutMs: 1000, retries: 3, startPeriodMs: 0 }, { onAttempt: (a) => attempts.push(a) }, sched);
    m.start();
    await sched.advance(40 + 100 + 120 + 100 + 1000);
    m.stop();
    expect(attempts).toEqual([
      { durationMs: 40, ok: false },
      { durationMs: 120, ok: true },
      { durationMs: 1000, ok: false },
    ]);
  });
});

// ------------------------------------------------------------------ a real daemon

let dir: string;
let daemon: RunningCli | undefined;

interface UnitRow {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
  exitCode: number | null;
}

async function get(path: string): Promise<Response> {
  const c = controlFile(dir);
  if (!c) throw new Error('no daemon');
  return fetch(`http://127.0.0.1:${c.port}${path}`, { headers: { authorization: `Bearer ${c.token}` } });
}

async function rows(): Promise<UnitRow[]> {
  return (await (await get('/api/units')).json()) as UnitRow[];
}

async function row(name: string): Promise<UnitRow> {
  const r = (await rows()).find((u) => u.name === name);
  if (!r) throw new Error(`no unit ${name}`);
  return r;
}

/** The seq of the last line of `unit`, from the hello frame of a non-following log stream. */
async function lastSeq(unit: string): Promise<number> {
  const c = controlFile(dir)!;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${c.port}/api/logs?units=${unit}&tail=0&token=${c.token}`);
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as { type: string; lastSeq?: Record<string, number> };
      if (f.type === 'hello') {
        resolve(f.lastSeq?.[unit] ?? -1);
        ws.close();
      }
    });
    ws.on('error', reject);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bksup-metrics-'));
  const [httpPort, closedPort] = [await freePort(), await freePort()];
  const node = JSON.stringify(process.execPath);
  writeConfig(
    dir,
    `{
    units: {
      steady: { command: [${node}, '-e', 'console.log("one"); console.error("two"); console.log("three"); setInterval(() => {}, 1000)'] },
      probed: {
        command: [${node}, '-e', 'require("node:http").createServer((q, s) => s.end("ok")).listen(${httpPort}, "127.0.0.1")'],
        healthcheck: { http: 'http://127.0.0.1:${httpPort}/', interval: '200ms' },
      },
      'never-healthy': { command: [${node}, '-e', 'setInterval(() => {}, 1000)'], healthcheck: { tcp: ${closedPort}, interval: '200ms' } },
      victim: { command: [${node}, '-e', 'setInterval(() => {}, 1000)'], restart: { policy: 'always', backoff: { initial: '50ms' } } },
      crasher: { command: [${node}, '-e', 'process.exit(3)'], restart: { policy: 'on-failure', maxRestarts: 1, window: '1m', backoff: { initial: '50ms' } } },
    },
  }`,
  );
  daemon = startCli(dir, ['up']);
  await waitFor(() => controlFile(dir), { timeout: 30_000, message: 'control.json' });
});

afterAll(async () => {
  if (daemon && controlFile(dir)) await runCli(dir, ['down']).catch(() => undefined);
  if (daemon) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('/metrics of a running daemon', () => {
  it('after a forced restart and a crash loop, the counters match GET /api/units', async () => {
    await waitFor(
      async () => {
        const r = await rows();
        const st = (n: string): string | undefined => r.find((x) => x.name === n)?.state;
        return ['steady', 'probed', 'victim'].every((n) => st(n) === 'healthy') && st('crasher') === 'failed' && st('never-healthy') === 'running';
      },
      { timeout: 30_000, message: `units settled (${daemon?.output().slice(-2000)})` },
    );
    const before = await row('victim');
    process.kill(before.pid!, 'SIGKILL');
    await waitFor(async () => {
      const v = await row('victim');
      return v.restarts === 1 && v.state === 'healthy' && v.pid !== before.pid;
    }, { timeout: 30_000, message: 'victim restarted' });

    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const units = await rows();
    expectValid(text);
    const f = parseMetrics(text);

    for (const u of units) {
      expect(value(f, 'bksup_unit_restarts_total', { unit: u.name }), `${u.name} restarts`).toBe(u.restarts);
      expect(value(f, 'bksup_unit_state', { unit: u.name, state: u.state }), `${u.name} state`).toBe(1);
      expect(value(f, 'bksup_unit_up', { unit: u.name }), `${u.name} up`).toBe(['healthy', 'completed', 'skipped'].includes(u.state) ? 1 : 0);
      if (u.exitCode !== null) expect(value(f, 'bksup_unit_last_exit_code', { unit: u.name }), `${u.name} exit code`).toBe(u.exitCode);
    }
    expect(units.find((u) => u.name === 'victim')!.restarts).toBe(1);
    expect(units.find((u) => u.name === 'crasher')).toMatchObject({ state: 'failed', exitCode: 3, restarts: 1 });
    // The killed unit runs again (no exit code in its row), its last exit is still on record.
    expect(value(f, 'bksup_unit_last_exit_code', { unit: 'victim' })).toBe(128 + 9);

    expect(familyType(f, 'bksup_health_check_duration_seconds')).toBe('HISTOGRAM');
    expect(value(f, 'bksup_health_check_failures_total', { unit: 'never-healthy' })).toBeGreaterThan(0);

    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds']) {
      expect(samples(f, name).length, name).toBeGreaterThan(0);
    }
  }, 90_000);

  it('log line counters add up to the seqs of the log stream', async () => {
    // steady printed its three lines long ago; only its state echoes (system lines) came with them.
    await waitFor(
      async () => {
        const f = parseMetrics(await (await get('/metrics')).text());
        const total = samples(f, 'bksup_log_lines_total', { unit: 'steady' }).reduce((n, s) => n + Number(s.value), 0);
        return total === (await lastSeq('steady'));
      },
      { timeout: 20_000, message: 'line counters == lastSeq' },
    );
    const f = parseMetrics(await (await get('/metrics')).text());
    expect(value(f, 'bksup_log_lines_total', { unit: 'steady', stream: 'stdout' })).toBe(2);
    expect(value(f, 'bksup_log_lines_total', { unit: 'steady', stream: 'stderr' })).toBe(1);
    expect(value(f, 'bksup_log_bytes_total', { unit: 'steady', stream: 'stdout' })).toBe('one\nthree\n'.length);
  });

  it('counts WebSocket clients', async () => {
    const c = controlFile(dir)!;
    const ws = new WebSocket(`ws://127.0.0.1:${c.port}/api/events?token=${c.token}`);
    await new Promise((r) => ws.once('message', r));
    const f = parseMetrics(await (await get('/metrics')).text());
    expect(value(f, 'bksup_ws_clients', { endpoint: 'events' })).toBe(1);
    ws.close();
    await waitFor(async () => value(parseMetrics(await (await get('/metrics')).text()), 'bksup_ws_clients', { endpoint: 'events' }) === 0);
  });

  it('a real Prometheus scrapes it with the bearer token; its view matches GET /api/units', async () => {
    const c = controlFile(dir)!;
    const promDir = join(dir, 'prometheus');
    mkdirSync(promDir);
    writeFileSync(join(promDir, 'token'), c.token, { mode: 0o600 });
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, scrape_timeout: 1s }',
        'scrape_configs:',
        '  - job_name: bksup',
        `    authorization: { credentials_file: ${JSON.stringify(join(promDir, 'token'))} }`,
        `    static_configs: [{ targets: ['127.0.0.1:${c.port}'] }]`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const prom = spawn('prometheus', [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let promLog = '';
    prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    const promExited = new Promise((r) => prom.once('exit', r));
    prom.once('error', (err) => (promLog += `spawn failed: ${err.message} (install Debian's prometheus package; .ci/run does)`));
    const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== 'success') throw new Error(JSON.stringify(body));
      return body.data.result;
    };
    try {
      // `up` is Prometheus' own verdict on the scrape: reachable, authorised, parsed.
      await waitFor(async () => (await query('up{job="bksup"}'))[0]?.value[1] === '1', { timeout: 60_000, message: `a successful scrape (prometheus log: ${promLog})` });
      const units = await rows();
      const restarts = await query('bksup_unit_restarts_total');
      for (const u of units) expect(Number(restarts.find((r) => r.metric.unit === u.name)?.value[1]), u.name).toBe(u.restarts);
      const probes = await query('bksup_health_check_duration_seconds_count');
      expect(Number(probes.find((r) => r.metric.unit === 'probed')?.value[1])).toBeGreaterThan(0);
      const failures = await query('bksup_health_check_failures_total{unit="never-healthy"}');
      expect(Number(failures[0]?.value[1])).toBeGreaterThan(0);
      const p99 = await query('histogram_quantile(0.99, bksup_health_check_duration_seconds_bucket{unit="probed"})');
      expect(Number(p99[0]?.value[1])).toBeGreaterThan(0);
      expect((await query('bksup_unit_state{unit="crasher",state="failed"}'))[0]?.value[1]).toBe('1');
      expect((await query('process_resident_memory_bytes{job="bksup"}')).length).toBe(1);
    } finally {
      prom.kill('SIGTERM');
      await promExited;
    }
  }, 120_000);

  it('without the token /metrics is 401', async () => {
    const c = controlFile(dir)!;
    expect((await fetch(`http://127.0.0.1:${c.port}/metrics`)).status).toBe(401);
  });
});
