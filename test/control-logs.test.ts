// /api/logs over real loopback WebSockets: tail, since (ring and files), unit filters, the
// history → live handover, and bad requests beside a well-behaved client.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startControlServer, type ControlServer } from '../src/control/server.ts';
import { FakeSupervisor, LinePublisher, LogsClient, TestHistory, range, writeLogFile } from './fixtures/control/harness.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string;
let server: ControlServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bksup-control-logs-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function setup(ringSize = 1000, units = ['api', 'web', 'worker']) {
  const sup = new FakeSupervisor(units.map((name) => ({ name })));
  const history = new TestHistory(sup.bus, ringSize, dir);
  const pub = new LinePublisher(sup.bus);
  server = await startControlServer({ host: '127.0.0.1', port: 0, allowRemote: false, stateDir: join(dir, '.supervisor'), handle: sup, history });
  const open = (query: string, opts: { keepLines?: boolean } = {}): LogsClient => new LogsClient(`ws://127.0.0.1:${server!.port}/api/logs?${query}`, { token: server!.token, ...opts });
  return { sup, history, pub, server, open };
}

describe('history', () => {
  it('tail=N gives the last N lines of each selected unit, then closes 1000 without follow', async () => {
    const { pub, open } = await setup();
    pub.publishN('api', 50);
    pub.publishN('web', 5);
    pub.publishN('worker', 30);
    const c = open('units=api,web&tail=10');
    const closed = await c.waitClosed();
    expect(closed.code).toBe(1000);
    expect(c.hello).toMatchObject({ type: 'hello', units: ['api', 'web'], lastSeq: { api: 50, web: 5 } });
    expect(c.seqs('api')).toEqual(range(41, 50));
    expect(c.seqs('web')).toEqual(range(1, 5));
    expect(c.seqs('worker')).toEqual([]);
    expect(c.lines.find((l) => l.unit === 'api')?.line).toBe('api line 41');
    expect(c.problems).toEqual([]);
    // several lines went out packed into one frame, not one frame each
    expect(c.packedFrames).toBeGreaterThan(0);
    expect(c.packedFrames).toBeLessThan(5);
  });

  it('without tail or since there is no history; all units when units= is absent', async () => {
    const { pub, open } = await setup();
    pub.publishN('api', 5);
    const c = open('');
    await c.waitClosed();
    expect(c.hello?.units).toEqual(['api', 'web', 'worker']);
    expect(c.lines).toEqual([]);
  });

  it('since=SEQ from the ring, per unit or for all', async () => {
    const { pub, open, history } = await setup();
    pub.publishN('api', 100);
    pub.publishN('web', 100);
    const all = open('since=95');
    await all.waitClosed();
    expect(all.seqs('api')).toEqual(range(96, 100));
    expect(all.seqs('web')).toEqual(range(96, 100));
    const per = open('units=api,web&since=api:98,web:90');
    await per.waitClosed();
    expect(per.seqs('api')).toEqual([99, 100]);
    expect(per.seqs('web')).toEqual(range(91, 100));
    expect(per.hello?.from).toEqual({ api: 98, web: 90 });
    expect(history.fileReads).toBe(0);
  });

  it('since=SEQ reads the log file when the ring wrapped, and the ring covers what the file lacks', async () => {
    const { pub, open, history } = await setup(100);
    for (let i = 0; i < 10; i++) pub.publishN('api', 100);
    // The file holds 1..950: the last 50 lines are "not flushed yet" and only the ring has them.
    writeLogFile(dir, 'api', range(1, 950));
    const c = open('units=api&since=40');
    await c.waitClosed();
    expect(history.fileReads).toBe(1);
    expect(c.seqs('api')).toEqual(range(41, 1000));
    expect(c.gaps).toEqual([]);
    expect(c.lines[0]).toMatchObject({ unit: 'api', stream: 'stdout', seq: 41, line: 'api line 41' });
    expect(c.lines[0]?.ts).toBe(Date.UTC(2026, 10, 26, 6, 14, 30, 123) + 41);
  });

  it('reports lines that neither the ring nor the files still have as a gap', async () => {
    const { pub, open } = await setup(100);
    for (let i = 0; i < 10; i++) pub.publishN('api', 100);
    writeLogFile(dir, 'api', range(1, 800));
    const c = open('units=api&since=700');
    await c.waitClosed();
    expect(c.seqs('api')).toEqual([...range(701, 800), ...range(901, 1000)]);
    expect(c.gaps).toEqual([{ type: 'gap', unit: 'api', dropped: 100, fromSeq: 801, toSeq: 900 }]);
    // the gap arrives in order: after line 800, before line 901
    const order = c.frames.filter((f) => f.type !== 'hello').map((f) => (f.type === 'gap' ? 'gap' : f.type === 'log' ? f.seq : f.type === 'logs' ? f.lines[0]?.seq : f.type));
    const gapAt = order.indexOf('gap');
    expect(gapAt).toBeGreaterThan(0);
    expect(order[gapAt + 1]).toBe(901);
  });

  it('tail=N larger than the ring continues into the file', async () => {
    const { pub, open } = await setup(100);
    for (let i = 0; i < 5; i++) pub.publishN('web', 100);
    writeLogFile(dir, 'web', range(1, 500));
    const c = open('units=web&tail=250');
    await c.waitClosed();
    expect(c.seqs('web')).toEqual(range(251, 500));
  });

  it('never mixes in lines of an earlier daemon run from the same file (seqs restart each run)', async () => {
    const { pub, open } = await setup(100);
    writeLogFile(dir, 'api', range(1, 50), (s) => `old run ${s}`);
    for (let i = 0; i < 3; i++) pub.publishN('api', 100);
    writeLogFile(dir, 'api', range(1, 300));
    const c = open('units=api&tail=1000');
    await c.waitClosed();
    expect(c.seqs('api')).toEqual(range(1, 300));
    expect(c.lines.filter((l) => l.line.startsWith('old run'))).toEqual([]);
  });

  it('interleaves units by time and keeps each unit in order', async () => {
    const { pub, open } = await setup();
    const t = Date.now();
    pub.publish('api', ['a1'], t);
    pub.publish('web', ['w1'], t + 1);
    pub.publish('api', ['a2', 'a3'], t + 2);
    pub.publish('web', ['w2'], t + 3);
    const c = open('tail=10');
    await c.waitClosed();
    expect(c.lines.map((l) => l.line)).toEqual(['a1', 'w1', 'a2', 'a3', 'w2']);
  });
});

describe('follow', () => {
  it('hands over from history to live without a gap or a duplicate while lines keep coming', async () => {
    const { pub, open, history } = await setup(200);
    writeLogFile(dir, 'api', range(1, 0)); // empty file to start with
    pub.publishN('api', 500);
    writeLogFile(dir, 'api', range(1, 500));
    // Publish continuously on every turn of the event loop while the client connects and its
    // history (from the file: the ring holds only 301..500) is read.
    let publishing = true;
    const pump = (): void => {
      if (!publishing) return;
      pub.publishN('api', 7);
      setImmediate(pump);
    };
    pump();
    const c = open('units=api&since=100&follow=1');
    await waitFor(() => c.hello);
    expect(history.fileReads).toBe(1);
    await waitFor(() => (c.last.get('api') ?? 0) > 1500, { message: 'live lines after the handover' });
    publishing = false;
    const last = pub.lastSeq('api');
    await c.waitForSeq('api', last);
    expect(c.problems).toEqual([]);
    expect(c.gaps).toEqual([]);
    expect(c.seqs('api')).toEqual(range(101, last));
  });

  it('unit filter: only the selected units arrive live', async () => {
    const { pub, open } = await setup();
    const c = open('units=web&follow=1');
    await waitFor(() => c.hello);
    pub.publishN('api', 3);
    pub.publishN('web', 3);
    pub.publishN('worker', 3);
    pub.publishN('web', 1);
    await c.waitForSeq('web', 4);
    expect(c.seqs('web')).toEqual([1, 2, 3, 4]);
    expect(c.lines.every((l) => l.unit === 'web')).toBe(true);
  });

  it('a single queued line goes as a log frame, several as one packed logs frame', async () => {
    const { pub, open } = await setup();
    const c = open('units=api&follow=1');
    await waitFor(() => c.hello);
    pub.publishN('api', 1);
    await c.waitForSeq('api', 1);
    pub.publishN('api', 300);
    await c.waitForSeq('api', 301);
    const kinds = c.frames.filter((f) => f.type === 'log' || f.type === 'logs').map((f) => f.type);
    expect(kinds[0]).toBe('log');
    expect(kinds.slice(1)).toEqual(['logs']);
  });
});

describe('bad requests', () => {
  it('unknown unit: an error frame naming the known units, then close 1008', async () => {
    const { open } = await setup();
    const c = open('units=api,nope&follow=1');
    const closed = await c.waitClosed();
    expect(closed.code).toBe(1008);
    expect(c.errors).toEqual(['unknown unit "nope" (known: api, web, worker)']);
  });

  it.each([
    ['tail=-1', 'tail must be a non-negative integer'],
    ['tail=abc', 'tail must be a non-negative integer'],
    ['since=api:x', 'since for api must be a non-negative integer'],
    ['since=:5', 'since must be SEQ or unit:SEQ'],
    ['follow=maybe', 'follow must be 1 or 0'],
    ['units=..%2F..%2Fetc', 'invalid unit name'],
  ])('%s → error frame and 1008', async (query, message) => {
    const { open } = await setup();
    const c = open(query);
    expect((await c.waitClosed()).code).toBe(1008);
    expect(c.errors[0]).toContain(message);
  });

  it('malformed, binary and oversize client frames affect only that client', async () => {
    const { pub, open } = await setup();
    const good = open('units=api&follow=1');
    const chatty = open('units=api&follow=1');
    const huge = open('units=api&follow=1');
    await Promise.all([good.opened, chatty.opened, huge.opened]);
    await waitFor(() => good.hello && chatty.hello && huge.hello);
    chatty.ws.send('{not json');
    chatty.ws.send(Buffer.from([0, 1, 2]));
    chatty.ws.send(JSON.stringify({ type: 'subscribe', units: ['x'] }));
    huge.ws.send('x'.repeat(200 * 1024));
    expect((await huge.waitClosed()).code).toBe(1009);
    await waitFor(() => chatty.errors.length === 3);
    expect(chatty.errors[1]).toContain('binary');
    pub.publishN('api', 20);
    await good.waitForSeq('api', 20);
    await chatty.waitForSeq('api', 20);
    expect(good.seqs('api')).toEqual(range(1, 20));
    expect(chatty.closed).toBeUndefined();
  });
});
