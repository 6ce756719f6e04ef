// The CLI client functions against the real control server over loopback: finding the daemon,
// status, logs (history, JSON, follow across a daemon restart), start/stop/restart, down.

import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { controlCommand, downCommand, findDaemon, logsCommand, statusCommand } from '../src/client/index.ts';
import { startControlServer, type ControlServer } from '../src/control/server.ts';
import { EventBus } from '../src/events.ts';
import { FakeSupervisor, LinePublisher, TestHistory, range } from './fixtures/control/harness.ts';
import { Sink } from './helpers/sink.ts';
import { waitFor } from './helpers/wait.ts';

const ESC = String.fromCharCode(27);


let dir: string;
let servers: ControlServer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bksup-client-'));
  servers = [];
});

afterEach(async () => {
  for (const s of servers) await s.close();
  await rm(dir, { recursive: true, force: true });
});

interface Daemon {
  sup: FakeSupervisor;
  pub: LinePublisher;
  history: TestHistory;
  server: ControlServer;
}

async function startDaemon(opts: { instance?: string; sup?: FakeSupervisor; history?: TestHistory; pub?: LinePublisher } = {}): Promise<Daemon> {
  const sup = opts.sup ?? new FakeSupervisor([{ name: 'postgres', kind: 'compose' }, { name: 'server' }, { name: 'nats_listener', state: 'failed' }], new EventBus());
  const history = opts.history ?? new TestHistory(sup.bus, 1000, join(dir, 'logs'));
  const pub = opts.pub ?? new LinePublisher(sup.bus);
  const server = await startControlServer({ host: '127.0.0.1', port: 0, allowRemote: false, stateDir: join(dir, '.supervisor'), handle: sup, history, ...(opts.instance ? { instance: opts.instance } : {}) });
  servers.push(server);
  return { sup, pub, history, server };
}

describe('findDaemon', () => {
  it('no control.json, a stale one (dead pid) or a broken one all mean no supervisor', async () => {
    const msg = `no supervisor is running in ${dir}: start one with bksup up (npm run supervise in the bk-supervisor checkout)`;
    expect(await findDaemon(dir)).toEqual({ ok: false, error: msg });
    await mkdir(join(dir, '.supervisor'));
    const gone = spawnSync('true').pid as number; // exited and reaped: its pid is dead
    await writeFile(join(dir, '.supervisor', 'control.json'), JSON.stringify({ host: '127.0.0.1', port: 1234, pid: gone, token: 'a'.repeat(64), startedAt: 1 }));
    expect(await findDaemon(dir)).toEqual({ ok: false, error: msg });
    await writeFile(join(dir, '.supervisor', 'control.json'), '{"host":');
    const broken = await findDaemon(dir);
    expect(broken.ok).toBe(false);
    expect(!broken.ok && broken.error).toMatch(/^no supervisor is running in .*: start one with bksup up \(npm run supervise in the bk-supervisor checkout\) \(.*not valid JSON\)$/);
  });

  it('finds a running one', async () => {
    const { server } = await startDaemon();
    const found = await findDaemon(dir);
    expect(found).toMatchObject({ ok: true, daemon: { baseUrl: server.url, wsUrl: `ws://127.0.0.1:${server.port}`, info: { pid: process.pid, token: server.token } } });
  });

  it('every command says so and exits 1 when nothing runs', async () => {
    const out = new Sink();
    const err = new Sink();
    const io = { out, err };
    expect(await statusCommand(dir, {}, io)).toBe(1);
    expect(await logsCommand(dir, [], { follow: true }, io)).toBe(1);
    expect(await controlCommand(dir, 'restart', ['server'], io)).toBe(1);
    expect(await downCommand(dir, io)).toBe(1);
    expect(err.lines()).toEqual(Array(4).fill(`no supervisor is running in ${dir}: start one with bksup up (npm run supervise in the bk-supervisor checkout)`));
    expect(out.text).toBe('');
  });
});

describe('status', () => {
  it('prints a table of units', async () => {
    const { sup } = await startDaemon();
    const out = new Sink();
    const now = Date.now();
    expect(await statusCommand(dir, {}, { out, color: false, now: () => now })).toBe(0);
    const [header, ...rows] = out.lines();
    expect(header).toMatch(/^UNIT\s+KIND\s+STATE\s+PID\s+PROCS\s+UPTIME\s+RESTARTS\s+HEALTH \/ REASON$/);
    const snap = sup.snapshot();
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(new RegExp(`^postgres\\s+compose\\s+running\\s+${snap[0]!.pid}\\s+-\\s+1m\\d+s\\s+0\\s+passing$`));
    expect(rows[2]).toMatch(/^nats_listener\s+process\s+failed\s+-\s+0\s+-\s+0\s+exited with code 1$/);
    // columns line up
    expect(rows.map((r) => r.indexOf('process') >= 0 ? r.indexOf('process') : r.indexOf('compose'))).toEqual([15, 15, 15]);
  });

  it('colours only when asked (TTY)', async () => {
    await startDaemon();
    const plain = new Sink();
    await statusCommand(dir, {}, { out: plain });
    expect(plain.text).not.toContain('\x1b[');
    const tty = new Sink();
    await statusCommand(dir, {}, { out: tty, color: true });
    expect(tty.text).toContain('\x1b[32mpassing');
  });

  it('--json prints exactly what GET /api/units returns', async () => {
    const { server } = await startDaemon();
    const out = new Sink();
    expect(await statusCommand(dir, { json: true }, { out })).toBe(0);
    const api = await (await fetch(`${server.url}/api/units`, { headers: { authorization: `Bearer ${server.token}` } })).json();
    expect(JSON.parse(out.text)).toEqual(api);
  });
});

describe('logs', () => {
  it('-n N prints the last N lines per unit as `unit | line`', async () => {
    const { pub } = await startDaemon();
    pub.publishN('server', 30);
    pub.publish('nats_listener', ['connected to nats']);
    const out = new Sink();
    expect(await logsCommand(dir, ['server', 'nats_listener'], { n: 3 }, { out, color: false })).toBe(0);
    expect(out.lines()).toEqual(['server        | server line 28', 'server        | server line 29', 'server        | server line 30', 'nats_listener | connected to nats']);
  });

  it('colours unit prefixes on a TTY; --json prints one object per line', async () => {
    const { pub } = await startDaemon();
    pub.publishN('server', 2);
    const tty = new Sink();
    await logsCommand(dir, ['server'], { n: 1 }, { out: tty, color: true });
    expect(tty.text).toMatch(new RegExp(`^${ESC}\\[\\d+mserver${ESC}\\[0m \\| server line 2\n$`));
    const json = new Sink();
    await logsCommand(dir, ['server'], { n: 2, json: true }, { out: json });
    expect(json.lines().map((l) => JSON.parse(l))).toEqual([
      { type: 'log', unit: 'server', stream: 'stdout', seq: 1, ts: expect.any(Number), line: 'server line 1' },
      { type: 'log', unit: 'server', stream: 'stdout', seq: 2, ts: expect.any(Number), line: 'server line 2' },
    ]);
  });

  it('-n must be a whole number', async () => {
    await startDaemon();
    const err = new Sink();
    expect(await logsCommand(dir, [], { n: Number.NaN }, { out: new Sink(), err })).toBe(1);
    expect(err.text).toBe('logs: -n must be a whole number of lines (0 or more), got NaN\n');
  });

  it('an unknown unit is an error naming the known ones', async () => {
    await startDaemon();
    const out = new Sink();
    const err = new Sink();
    expect(await logsCommand(dir, ['nope'], { follow: true }, { out, err })).toBe(1);
    expect(err.text).toBe('logs: unknown unit "nope" (known: postgres, server, nats_listener)\n');
  });

  it('-f resumes after the control server went away and came back: nothing lost, nothing repeated', async () => {
    const a = await startDaemon({ instance: 'run-1' });
    a.pub.publishN('server', 5);
    const out = new Sink();
    const err = new Sink();
    const stop = new AbortController();
    const done = logsCommand(dir, ['server', 'postgres'], { follow: true, n: 2, json: true }, { out, err, signal: stop.signal, reconnect: { initialMs: 20, maxMs: 100 } });
    const seqs = (unit: string): number[] => out.lines().map((l) => JSON.parse(l)).filter((o) => o.unit === unit).map((o) => o.seq);
    await waitFor(() => seqs('server').length === 2);
    a.pub.publishN('server', 5);
    a.pub.publishN('postgres', 3);
    await waitFor(() => seqs('server').at(-1) === 10 && seqs('postgres').at(-1) === 3);

    // The daemon's control server goes away (its units and logs keep going meanwhile), and for a
    // while a stale control.json points at the dead port.
    const stale = await readFile(a.server.controlFile, 'utf8');
    await a.server.close();
    await writeFile(a.server.controlFile, stale, { mode: 0o600 });
    a.pub.publishN('server', 7);
    a.pub.publishN('postgres', 2);
    await waitFor(() => err.text.includes('reconnecting'));

    const b = await startDaemon({ instance: 'run-1', sup: a.sup, history: a.history, pub: a.pub });
    a.pub.publishN('server', 3);
    await waitFor(() => seqs('server').at(-1) === 20 && seqs('postgres').at(-1) === 5, { message: `resumed stream (got ${out.lines().length} lines)` });
    expect(seqs('server')).toEqual(range(4, 20));
    expect(seqs('postgres')).toEqual(range(1, 5));
    stop.abort();
    expect(await done).toBe(0);
    expect(b.server.stats().logClients.length).toBeLessThanOrEqual(1);
  });

  it('-f follows a restarted daemon (new instance, seqs from 1 again) from the start of its run', async () => {
    const a = await startDaemon({ instance: 'run-1' });
    a.pub.publishN('server', 50);
    const out = new Sink();
    const err = new Sink();
    const stop = new AbortController();
    const done = logsCommand(dir, ['server'], { follow: true, n: 0 }, { out, err, color: false, signal: stop.signal, reconnect: { initialMs: 20, maxMs: 100 } });
    await waitFor(() => a.server.stats().logClients.length === 1);
    a.pub.publishN('server', 2);
    await waitFor(() => out.lines().length === 2);
    await a.server.close();

    const b = await startDaemon({ instance: 'run-2' });
    b.pub.publish('server', ['fresh 1', 'fresh 2']);
    await waitFor(() => out.lines().length === 4);
    b.pub.publish('server', ['fresh 3']);
    await waitFor(() => out.lines().length === 5);
    expect(out.lines()).toEqual(['server | server line 51', 'server | server line 52', 'server | fresh 1', 'server | fresh 2', 'server | fresh 3']);
    expect(err.text).toContain('the supervisor was restarted: following its new run from the start');
    stop.abort();
    expect(await done).toBe(0);
  });

  it('a gap is shown in place', async () => {
    const { pub, history } = await startDaemon();
    // Ring of 1000: ask for more than it and the (absent) files hold.
    for (let i = 0; i < 3; i++) pub.publishN('server', 1000);
    expect(history.read('server', { sinceSeq: 0, limit: 1 }).complete).toBe(false);
    const out = new Sink();
    expect(await logsCommand(dir, ['server'], { n: 1002 }, { out, color: false })).toBe(0);
    const lines = out.lines();
    expect(lines[0]).toBe('server | … 2 lines not shown (seq 1999–2000): no longer stored (rotated away or deleted)');
    expect(lines).toHaveLength(1001);
  });
});

describe('start/stop/restart and down', () => {
  it('controlCommand reports each unit; unknown ones fail with the known list', async () => {
    const { sup } = await startDaemon();
    const out = new Sink();
    const err = new Sink();
    expect(await controlCommand(dir, 'restart', ['server', 'postgres'], { out, err, color: false })).toBe(0);
    expect(out.lines()).toEqual(['✓ restart server', '✓ restart postgres']);
    expect(await controlCommand(dir, 'stop', ['server', 'ghost'], { out, err, color: false })).toBe(1);
    expect(err.lines()).toEqual(['✗ stop ghost: unknown unit "ghost" (known: postgres, server, nats_listener)']);
    expect(await controlCommand(dir, 'stop', ['server'], { out, err, color: false })).toBe(1);
    expect(err.lines().at(-1)).toBe('✗ stop server: server is already stopped');
    expect(sup.calls).toEqual(['restart server', 'restart postgres', 'stop server', 'stop server']);
  });

  it('downCommand asks for shutdown and waits until the daemon removed control.json', async () => {
    const d = await startDaemon();
    // Like the real daemon: shutting down ends with closing the control server.
    const shutdown = d.sup.shutdown.bind(d.sup);
    d.sup.shutdown = async (reason) => {
      await shutdown(reason);
      await d.server.close();
    };
    const out = new Sink();
    expect(await downCommand(dir, { out })).toBe(0);
    expect(out.lines()).toEqual([`stopping the supervisor (pid ${process.pid})…`, 'supervisor stopped']);
    expect(d.sup.shutdownReasons).toEqual(['shutdown requested over the control API']);
    expect((await findDaemon(dir)).ok).toBe(false);
  });
});
