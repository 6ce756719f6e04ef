import * as fs from 'node:fs';
import fsModule from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { EventBus } from '../src/events.ts';
import { LogFiles, type LogWriteError } from '../src/logs/files.ts';
import { parseLine } from '../src/logs/format.ts';
import { waitFor } from './helpers/wait.ts';
import { publishOutput, syntheticLine, syntheticOutput } from './fixtures/logs/publish.ts';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bksup-logs-files-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Harness {
  bus: EventBus;
  files: LogFiles;
  errors: { unit: string; err: LogWriteError }[];
}

function setup(opts: Partial<ConstructorParameters<typeof LogFiles>[0]> = {}): Harness {
  const bus = new EventBus();
  const errors: Harness['errors'] = [];
  const files = new LogFiles({
    dir: path.join(tmp, 'logs'),
    maxSizeBytes: 0,
    keep: 5,
    onError: (unit, err) => errors.push({ unit, err }),
    ...opts,
  });
  files.attach(bus);
  return { bus, files, errors };
}

/** unit.log.<N> … unit.log.1, unit.log as they are on disk. */
function filesOldestFirst(dir: string, unit: string): string[] {
  const rotated = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`${unit}.log.`))
    .sort((a, b) => Number(b.slice(unit.length + 5)) - Number(a.slice(unit.length + 5)));
  const live = fs.existsSync(path.join(dir, `${unit}.log`)) ? [`${unit}.log`] : [];
  return [...rotated, ...live];
}

function records(file: string): { seq: number; line: string; stream: string }[] {
  const text = fs.readFileSync(file, 'utf8');
  expect(text.endsWith('\n'), `${file} ends on a line boundary`).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((row) => {
      const p = parseLine(row);
      expect(p, `${file}: not a record: ${JSON.stringify(row.slice(0, 80))}`).toBeDefined();
      return { seq: p!.seq, line: p!.line, stream: p!.stream };
    });
}

describe('LogFiles', () => {
  it('writes every kind of text byte-exact: ASCII, Latin-1, CJK, emoji, a lone surrogate', async () => {
    const { bus, files, errors } = setup();
    const samples = ['plain ascii 123', 'café über naïve', 'ÿ\u00a0nbsp', '日本語のログ', 'emoji 😀 ok', 'lone \ud800 surrogate', ''];
    // One batch each, and all of them mixed into one batch (one string with every kind).
    let seq = 0;
    for (const line of samples) bus.publishLogs({ unit: 'enc', stream: 'stdout', firstSeq: ++seq, ts: 0, lines: [line] });
    bus.publishLogs({ unit: 'enc', stream: 'stdout', firstSeq: seq + 1, ts: 0, lines: samples });
    await files.flush();
    const recs = records(path.join(tmp, 'logs', 'enc.log'));
    const expected = [...samples, ...samples].map((l) => Buffer.from(l).toString()); // what UTF-8 can hold
    expect(recs.map((r) => r.line)).toEqual(expected);
    expect(errors).toEqual([]);
    await files.close();
  });

  it('writes 100,000 published lines to the file, in order, none split or merged', async () => {
    const { bus, files, errors } = setup();
    const count = 100_000;
    const last = await publishOutput(bus, 'server', syntheticOutput(count), { files });
    expect(last).toBe(count);
    await files.flush();
    const recs = records(path.join(tmp, 'logs', 'server.log'));
    expect(recs.length).toBe(count);
    for (let i = 0; i < count; i++) {
      const r = recs[i]!;
      if (r.seq !== i + 1 || r.line !== syntheticLine(i) || r.stream !== 'stdout') {
        expect({ at: i, ...r }).toEqual({ at: i, seq: i + 1, line: syntheticLine(i), stream: 'stdout' });
      }
    }
    expect(errors).toEqual([]);
    await files.close();
  });

  it('writes once per unit per flush, however many batches came in', async () => {
    const { bus, files } = setup();
    const writes: number[] = [];
    const realWrite = fsModule.write;
    // Count the fs.write calls LogFiles makes (it imports node:fs as ESM: sync the live bindings).
    fsModule.write = ((fd: number, ...rest: unknown[]) => {
      writes.push(fd);
      return (realWrite as (...a: unknown[]) => void)(fd, ...rest);
    }) as typeof fsModule.write;
    syncBuiltinESMExports();
    try {
      for (let i = 1; i <= 1000; i++) {
        bus.publishLogs({ unit: 'a', stream: 'stdout', firstSeq: i, ts: 0, lines: [`a ${i}`] });
        bus.publishLogs({ unit: 'b', stream: 'stderr', firstSeq: i, ts: 0, lines: [`b ${i}`] });
      }
      await files.flush();
    } finally {
      fsModule.write = realWrite;
      syncBuiltinESMExports();
    }
    expect(writes.length).toBe(2);
    expect(records(path.join(tmp, 'logs', 'a.log')).length).toBe(1000);
    expect(records(path.join(tmp, 'logs', 'b.log')).length).toBe(1000);
    await files.close();
  });

  it('signals congestion while a write is in flight and too much waits behind it, and when it is over', async () => {
    const { bus, files } = setup({ highWaterBytes: 1000 });
    expect(files.congested('x')).toBe(false);
    await files.whenDrained('x'); // unknown unit: at once
    bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['first'] });
    const flushing = files.flush(); // a write is now in flight
    let seq = 2;
    while (!files.congested('x')) {
      bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: seq, ts: 0, lines: [`line ${seq} ${'z'.repeat(100)}`] });
      seq++;
      expect(seq).toBeLessThan(100);
    }
    expect(files.stats('x')!.pendingBytes).toBeGreaterThan(1000);
    await files.whenDrained('x');
    expect(files.congested('x')).toBe(false);
    await flushing;
    await files.flush();
    expect(records(path.join(tmp, 'logs', 'x.log')).map((r) => r.seq)).toEqual(Array.from({ length: seq - 1 }, (_, i) => i + 1));
    await files.close();
  });

  it('offers the same backpressure on the bus it is attached to, and withdraws it on close', async () => {
    const { bus, files } = setup({ highWaterBytes: 1000 });
    expect(bus.logBackpressure?.('x')).toBeUndefined();
    bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['first'] });
    const flushing = files.flush();
    for (let seq = 2; seq < 30; seq++) bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: seq, ts: 0, lines: ['z'.repeat(100)] });
    const wait = bus.logBackpressure?.('x');
    expect(wait).toBeInstanceOf(Promise);
    await wait;
    await flushing;
    await files.close();
    expect(bus.logBackpressure).toBeUndefined();
  });

  it('is never congested while writes fail (a broken disk must not stall the child)', async () => {
    const dir = path.join(tmp, 'logs');
    fs.writeFileSync(dir, 'not a directory');
    const { bus, files, errors } = setup({ highWaterBytes: 100, retryMs: 10_000 });
    bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['a'] });
    await files.flush();
    expect(errors.length).toBe(1);
    for (let i = 2; i < 50; i++) bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: i, ts: 0, lines: ['y'.repeat(50)] });
    expect(files.congested('x')).toBe(false);
    await files.whenDrained('x');
    await files.close();
  });

  it('keeps units and streams apart, and appends to an existing file', async () => {
    const logs = path.join(tmp, 'logs');
    fs.mkdirSync(logs);
    fs.writeFileSync(path.join(logs, 'web.log'), '2026-01-01T00:00:00.000Z stdout 1 from before\n');
    const { bus, files } = setup();
    bus.publishLogs({ unit: 'web', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['w1'] });
    bus.publishLogs({ unit: 'server', stream: 'stderr', firstSeq: 1, ts: 0, lines: ['s1', 's2'] });
    bus.publishLogs({ unit: 'web', stream: 'system', firstSeq: 2, ts: 0, lines: ['● started'] });
    await files.flush();
    expect(fs.readFileSync(path.join(logs, 'web.log'), 'utf8')).toBe(
      '2026-01-01T00:00:00.000Z stdout 1 from before\n' +
        '1970-01-01T00:00:00.000Z stdout 1 w1\n' +
        '1970-01-01T00:00:00.000Z system 2 ● started\n',
    );
    expect(fs.readFileSync(path.join(logs, 'server.log'), 'utf8')).toBe(
      '1970-01-01T00:00:00.000Z stderr 1 s1\n1970-01-01T00:00:00.000Z stderr 2 s2\n',
    );
    await files.close();
  });

  it('writes nothing and schedules nothing when idle', async () => {
    const { files } = setup();
    await files.flush();
    expect(fs.existsSync(path.join(tmp, 'logs'))).toBe(false);
    await files.close();
  });

  it('rotates under load: exactly keep rotated files + the live one, each within maxSize and on line boundaries', async () => {
    const maxSize = 64 * 1024;
    const keep = 3;
    const { bus, files, errors } = setup({ maxSizeBytes: maxSize, keep });
    const last = await publishOutput(bus, 'server', syntheticOutput(30_000), { files });
    await files.flush();
    const dir = path.join(tmp, 'logs');
    const names = filesOldestFirst(dir, 'server');
    expect(names).toEqual(['server.log.3', 'server.log.2', 'server.log.1', 'server.log']);
    expect(fs.readdirSync(dir).sort()).toEqual([...names].sort());
    // The files hold the newest lines, contiguous across files, ending with the last seq.
    const seqs: number[] = [];
    for (const name of names) {
      const size = fs.statSync(path.join(dir, name)).size;
      expect(size, name).toBeLessThanOrEqual(maxSize);
      expect(size, name).toBeGreaterThan(maxSize / 2);
      for (const r of records(path.join(dir, name))) {
        expect(r.line).toBe(syntheticLine(r.seq - 1));
        seqs.push(r.seq);
      }
    }
    expect(seqs[seqs.length - 1]).toBe(last);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
    expect(errors).toEqual([]);
    await files.close();
  });

  it('with enough rotated files, concatenating them in order gives every line exactly once', async () => {
    const maxSize = 100 * 1024;
    const { bus, files, errors } = setup({ maxSizeBytes: maxSize, keep: 1000 });
    const count = 40_000;
    await publishOutput(bus, 'api', syntheticOutput(count), { chunkSize: 16 * 1024, files });
    await files.flush();
    const dir = path.join(tmp, 'logs');
    const names = filesOldestFirst(dir, 'api');
    expect(names.length).toBeGreaterThan(10);
    const all = names.flatMap((n) => records(path.join(dir, n)));
    expect(all.length).toBe(count);
    all.forEach((r, i) => {
      if (r.seq !== i + 1 || r.line !== syntheticLine(i)) expect({ i, ...r }).toEqual({ i, seq: i + 1, line: syntheticLine(i) });
    });
    for (const n of names) expect(fs.statSync(path.join(dir, n)).size).toBeLessThanOrEqual(maxSize);
    expect(errors).toEqual([]);
    await files.close();
  });

  it('keep 0 keeps only the live file', async () => {
    const { bus, files } = setup({ maxSizeBytes: 8 * 1024, keep: 0 });
    const last = await publishOutput(bus, 'solo', syntheticOutput(3000));
    await files.flush();
    const dir = path.join(tmp, 'logs');
    expect(fs.readdirSync(dir)).toEqual(['solo.log']);
    const recs = records(path.join(dir, 'solo.log'));
    expect(recs[recs.length - 1]!.seq).toBe(last);
    expect(fs.statSync(path.join(dir, 'solo.log')).size).toBeLessThanOrEqual(8 * 1024);
    await files.close();
  });

  it('puts a line longer than maxSize alone in its own file', async () => {
    const { bus, files } = setup({ maxSizeBytes: 1000, keep: 5 });
    bus.publishLogs({ unit: 'big', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['small 1', 'y'.repeat(3000), 'small 3'] });
    await files.flush();
    const dir = path.join(tmp, 'logs');
    const names = filesOldestFirst(dir, 'big');
    expect(names.map((n) => records(path.join(dir, n)).map((r) => r.seq))).toEqual([[1], [2], [3]]);
    await files.close();
  });

  it('rotates an oversized file left by an earlier run and removes rotated files beyond keep', async () => {
    const dir = path.join(tmp, 'logs');
    fs.mkdirSync(dir);
    const old = '1970-01-01T00:00:00.000Z stdout 1 old\n'.repeat(100);
    fs.writeFileSync(path.join(dir, 'db.log'), old);
    for (const n of [1, 2, 3, 7]) fs.writeFileSync(path.join(dir, `db.log.${n}`), `rotated ${n}\n`);
    const { bus, files } = setup({ maxSizeBytes: 1000, keep: 2 });
    bus.publishLogs({ unit: 'db', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['new'] });
    await files.flush();
    expect(filesOldestFirst(dir, 'db')).toEqual(['db.log.2', 'db.log.1', 'db.log']);
    expect(fs.readFileSync(path.join(dir, 'db.log.2'), 'utf8')).toBe('rotated 1\n');
    expect(fs.readFileSync(path.join(dir, 'db.log.1'), 'utf8')).toBe(old);
    expect(fs.readFileSync(path.join(dir, 'db.log'), 'utf8')).toBe('1970-01-01T00:00:00.000Z stdout 1 new\n');
    await files.close();
  });

  it('keeps logs private (dir 0700, files 0600, whatever the umask) and tightens files an earlier run left readable', async () => {
    const dir = path.join(tmp, 'logs');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'db.log'), 'x\n'.repeat(600), { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'db.log.1'), 'older\n', { mode: 0o644 });
    fs.chmodSync(path.join(dir, 'db.log'), 0o644);
    fs.chmodSync(path.join(dir, 'db.log.1'), 0o644);
    const previous = process.umask(0o000);
    try {
      const { bus, files } = setup({ dir: path.join(tmp, 'fresh', 'logs'), maxSizeBytes: 1000, keep: 2 });
      bus.publishLogs({ unit: 'web', stream: 'stdout', firstSeq: 1, ts: 0, lines: Array.from({ length: 60 }, (_, i) => `line ${i}`) });
      await files.flush();
      const fresh = path.join(tmp, 'fresh', 'logs');
      expect((fs.statSync(fresh).mode & 0o777).toString(8)).toBe('700');
      expect(fs.readdirSync(fresh).sort()).toEqual(['web.log', 'web.log.1', 'web.log.2']);
      for (const f of fs.readdirSync(fresh)) expect((fs.statSync(path.join(fresh, f)).mode & 0o777).toString(8), f).toBe('600');
      await files.close();

      const old = setup({ maxSizeBytes: 1000, keep: 2 });
      old.bus.publishLogs({ unit: 'db', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['new'] });
      await old.files.flush();
      for (const f of fs.readdirSync(dir)) expect((fs.statSync(path.join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
      await old.files.close();
    } finally {
      process.umask(previous);
    }
  });

  it('logs.fileMode relaxes it: 0o640 gives group-readable files and a group-searchable dir', async () => {
    const dir = path.join(tmp, 'shared', 'logs');
    const { bus, files } = setup({ dir, fileMode: 0o640 });
    bus.publishLogs({ unit: 'web', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['a'] });
    await files.flush();
    expect((fs.statSync(dir).mode & 0o777).toString(8)).toBe('750');
    expect((fs.statSync(path.join(dir, 'web.log')).mode & 0o777).toString(8)).toBe('640');
    await files.close();
  });

  it('when rotation fails, reports it once and keeps every line in the live file', async () => {
    const dir = path.join(tmp, 'logs');
    // A non-empty directory where unit.log.1 should go: rename fails (EISDIR/ENOTEMPTY), even as root.
    fs.mkdirSync(path.join(dir, 'stuck.log.1'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'stuck.log.1', 'occupied'), 'x');
    const { bus, files, errors } = setup({ maxSizeBytes: 4096, keep: 1 });
    const last = await publishOutput(bus, 'stuck', syntheticOutput(2000), { chunkSize: 1024 });
    await files.flush();
    expect(errors.length).toBe(1);
    expect(errors[0]!.err.message).toMatch(/cannot rotate/);
    const recs = records(path.join(dir, 'stuck.log'));
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    await files.close();
  });

  it('reports an unwritable log dir once, never throws, and writes everything once the dir works again', async () => {
    // As root, permission bits stop nothing: a regular FILE where the directory should be does.
    const dir = path.join(tmp, 'logs');
    fs.writeFileSync(dir, 'not a directory');
    const { bus, files, errors } = setup({ retryMs: 30 });
    let seq = 1;
    for (let i = 0; i < 50; i++) {
      expect(() => bus.publishLogs({ unit: 'server', stream: 'stdout', firstSeq: seq, ts: 0, lines: [`a${seq}`, `a${seq + 1}`] })).not.toThrow();
      seq += 2;
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => errors.length > 0, { message: 'onError' });
    await files.flush(); // an explicit flush retries at once and fails again, still quietly
    expect(errors.length).toBe(1);
    expect(errors[0]!.unit).toBe('server');
    expect(['ENOTDIR', 'EEXIST']).toContain(errors[0]!.err.code);
    expect(errors[0]!.err.message).toContain(path.join(dir, 'server.log'));
    expect(files.stats('server')!.failing).toBe(true);

    fs.rmSync(dir);
    bus.publishLogs({ unit: 'server', stream: 'stdout', firstSeq: seq, ts: 0, lines: ['after'] });
    await waitFor(() => fs.existsSync(path.join(dir, 'server.log')) && fs.readFileSync(path.join(dir, 'server.log'), 'utf8').includes(' after\n'), {
      message: 'lines written after the dir came back',
    });
    const recs = records(path.join(dir, 'server.log'));
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    expect(recs[0]!.line).toBe('a1');
    expect(recs[recs.length - 1]!.line).toBe('after');
    expect(files.stats('server')).toMatchObject({ failing: false, pendingBytes: 0, droppedLines: 0 });
    expect(errors.length).toBe(1);
    await files.close();
  });

  it('bounds the backlog while failing: drops the oldest lines, counts them, reports once', async () => {
    const dir = path.join(tmp, 'logs');
    fs.writeFileSync(dir, 'not a directory');
    const { bus, files, errors } = setup({ retryMs: 20, maxBacklogBytes: 10_000 });
    let seq = 1;
    for (let i = 0; i < 200; i++) {
      bus.publishLogs({ unit: 'flood', stream: 'stdout', firstSeq: seq, ts: 0, lines: [`line ${seq} ${'z'.repeat(80)}`] });
      seq++;
      if (i === 0) await waitFor(() => errors.length > 0, { message: 'first failure' });
    }
    const dropped = files.stats('flood')!.droppedLines;
    expect(dropped).toBeGreaterThan(50);
    expect(errors.map((e) => e.err.code).filter((c) => c === 'EDROPPED')).toEqual(['EDROPPED']);
    expect(files.stats('flood')!.pendingBytes).toBeLessThanOrEqual(10_000);
    fs.rmSync(dir);
    await waitFor(() => files.stats('flood')!.pendingBytes === 0 && !files.stats('flood')!.failing, { message: 'backlog written' });
    // pendingBytes is 0 as soon as the backlog is handed to the write: wait for the write itself.
    await files.flush();
    const recs = records(path.join(dir, 'flood.log'));
    // The newest lines survive, contiguous up to the last one.
    expect(recs.length).toBe(seq - 1 - dropped);
    expect(recs[recs.length - 1]!.seq).toBe(seq - 1);
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.seq).toBe(recs[i - 1]!.seq + 1);
    await files.close();
  });

  it('refuses unit names that would escape the log dir, and supervisor.log', async () => {
    const { bus, files, errors } = setup();
    for (const unit of ['../evil', 'a/b', '..', 'x\\y', '', 'supervisor']) {
      bus.publishLogs({ unit, stream: 'stdout', firstSeq: 1, ts: 0, lines: ['nope'] });
      bus.publishLogs({ unit, stream: 'stdout', firstSeq: 2, ts: 0, lines: ['nope'] });
    }
    await files.flush();
    expect(errors.map((e) => [e.unit, e.err.code])).toEqual([
      ['../evil', 'EBADNAME'],
      ['a/b', 'EBADNAME'],
      ['..', 'EBADNAME'],
      ['x\\y', 'EBADNAME'],
      ['', 'EBADNAME'],
      ['supervisor', 'EBADNAME'],
    ]);
    expect(fs.readdirSync(tmp)).toEqual([]);
    await files.close();
  });

  it('flushSync writes what is pending before returning (exit paths)', async () => {
    const { bus, files } = setup();
    bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['one', 'two'] });
    files.flushSync();
    expect(fs.readFileSync(path.join(tmp, 'logs', 'x.log'), 'utf8')).toBe(
      '1970-01-01T00:00:00.000Z stdout 1 one\n1970-01-01T00:00:00.000Z stdout 2 two\n',
    );
    await files.close();
  });

  it('close flushes, and ignores batches published afterwards', async () => {
    const { bus, files } = setup();
    bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: 1, ts: 0, lines: ['before'] });
    await files.close();
    bus.publishLogs({ unit: 'x', stream: 'stdout', firstSeq: 2, ts: 0, lines: ['after'] });
    files.write({ unit: 'x', stream: 'stdout', firstSeq: 3, ts: 0, lines: ['after'] });
    await files.flush();
    expect(fs.readFileSync(path.join(tmp, 'logs', 'x.log'), 'utf8')).toBe('1970-01-01T00:00:00.000Z stdout 1 before\n');
  });
});
