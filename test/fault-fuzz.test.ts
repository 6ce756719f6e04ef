// Fault injection on the control API of a real `bksup up`: a bounded fuzz loop (2,000 operations
// or 20 s, seeded: FAULT_SEED=n replays a run) of random and malformed HTTP requests and
// WebSocket traffic — random methods, paths, headers and bodies, invalid UTF-8, truncated
// upgrades, bad handshakes, garbage and malformed frames after an upgrade, oversized frames,
// with no token, a wrong one and the right one. Beside it, well-behaved clients must not notice:
// a /api/logs follower gets every line of a ticker (contiguous seq and tick numbers, no gap) and
// GET /api/units keeps answering. Unauthenticated requests must never get a 2xx or a 101 (except
// the dashboard's public /login, /logout and /assets/*), nobody without a login link may get a
// session cookie, and no request may cause a 500.

import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { sessionCookieName } from '../src/control/sessions.ts';
import { writeConfig } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups, TreeWatch, newRun, prng, readControl, seedFromEnv, stats, tickerCommand, treeCommand, type ControlInfo } from './fixtures/fault/harness.ts';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const MAX_OPS = 2000;
const MAX_MS = 20_000;
const CONCURRENCY = 8;
/** No fuzz operation lives longer than this (then its socket is destroyed). */
const OP_MS = 1500;

type Auth = 'none' | 'wrong' | 'right';

/** What all operations of a run add up to. */
interface Tally {
  kinds: Record<string, number>;
  statuses: Record<string, number>;
  /** Answers that must never happen (2xx/101 without the token, any 500, a session cookie). */
  violations: string[];
}

/**
 * One fuzz operation. Each has its own PRNG, seeded from the run's seed and the operation's
 * number, so operation #n is the same in every replay however the concurrent ones interleave.
 */
class Fuzzer {
  readonly rand: () => number;
  readonly port: number;
  readonly token: string;
  readonly n: number;
  readonly #tally: Tally;

  constructor(seed: number, n: number, ctl: ControlInfo, tally: Tally) {
    this.rand = prng((seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0);
    this.n = n;
    this.port = ctl.port;
    this.token = ctl.token;
    this.#tally = tally;
  }

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  ascii(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(33 + this.int(94));
    return s;
  }

  auth(): Auth {
    return this.pick(['none', 'wrong', 'right', 'right'] as const);
  }

  authHeader(a: Auth): string[] {
    if (a === 'none') return this.rand() < 0.2 ? [this.pick(['Authorization: Basic Zm9vOmJhcg==', 'Authorization: Bearer', 'Authorization:', `Authorization: bearer  ${this.token}x`])] : [];
    if (a === 'wrong') return [`Authorization: Bearer ${this.pick([randomBytes(32).toString('hex'), this.token.slice(0, -1), this.token.toUpperCase(), `${this.token} ${this.token}`, '\u00ff\u00fe'])}`];
    return [`Authorization: Bearer ${this.token}`];
  }

  /** A path; with the right token only harmless targets (never a shutdown, never the ticker). */
  path(a: Auth): string {
    const name = this.pick(['victim', 'victim', 'ticker', 'nope', '..', '%2e%2e', '%ff', 'a%2Fb', '%', this.ascii(1 + this.int(20)), 'x'.repeat(300)]);
    const unitName = a === 'right' && name === 'ticker' ? 'victim' : name;
    const action = this.pick(['restart', 'stop', 'start', 'kill', '', 'restart/extra']);
    const candidates = [
      '/api/units',
      '/api/units/',
      '/api//units',
      `/api/units/${unitName}/${action}`,
      `/api/units/${unitName}`,
      '/api/logs',
      `/api/logs?units=${this.pick(['ticker', 'nope', '', ',,,', '%ff'])}&tail=${this.pick(['5', '-1', 'abc', '99999999999999999999'])}`,
      '/api/events',
      '/',
      '*',
      `/${this.ascii(this.int(40))}`,
      `/api/units?token=${this.token}`,
      `http://127.0.0.1:${this.port}/api/units`,
      `/${'a/'.repeat(this.int(3000))}`,
      // The dashboard: its public part, its page and the metrics.
      '/login',
      `/login?t=${this.pick([randomBytes(32).toString('hex'), '', '%ff', this.token])}`,
      '/logout',
      `/assets/${this.pick(['app.js', 'app.css', 'login.js', 'favicon.svg', 'index.html', '../package.json', '%2e%2e/cli.ts', this.ascii(8)])}`,
      '/index.html',
      '/metrics',
    ];
    if (a !== 'right') candidates.push('/api/shutdown', `/api/units/ticker/${action}`);
    return this.pick(candidates);
  }

  method(a: Auth, path: string): string {
    const m = this.pick(['GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'TRACE', 'get', 'G\u00c9T', this.ascii(1 + this.int(8)), '']);
    // The right token never shuts the daemon down.
    if (a === 'right' && /shutdown/i.test(path) && m.toUpperCase() === 'POST') return 'GET';
    return m;
  }

  headers(): string[] {
    const out: string[] = [];
    // Plain requests too, so that many reach the routes instead of the parser's 400.
    const n = this.rand() < 0.4 ? 0 : this.int(6);
    for (let i = 0; i < n; i++) {
      out.push(
        this.pick([
          `X-${this.ascii(1 + this.int(10))}: ${this.ascii(this.int(50))}`,
          `Content-Type: ${this.pick(['application/json', 'text/plain', 'multipart/form-data; boundary=x', '\u00ff'])}`,
          'Origin: http://evil.example',
          `Origin: http://127.0.0.1:${this.port}`,
          'Transfer-Encoding: chunked',
          `Content-Length: ${this.pick(['0', '5', '-1', 'abc', '99999999999'])}`,
          'Connection: keep-alive',
          'Expect: 100-continue',
          `Host: ${this.ascii(this.int(30))}`,
          `${this.ascii(1 + this.int(5))}:${this.bytes(this.int(20)).toString('latin1')}`,
          `X-Big: ${'y'.repeat(this.int(20_000))}`,
          `Cookie: ${sessionCookieName(this.port)}=${this.pick([randomBytes(32).toString('hex'), '', 'x'.repeat(5000), this.token])}`,
          'Accept: text/html',
        ]),
      );
    }
    return out;
  }

  body(): Buffer {
    switch (this.int(8)) {
      case 0:
        return Buffer.alloc(0);
      case 7:
        return Buffer.from(JSON.stringify({ token: this.pick([randomBytes(32).toString('hex'), this.token, '', 'x'.repeat(300)]) }));
      case 1:
        return this.bytes(this.int(2000));
      case 2:
        return Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0xff, 0xfe, 0xed, 0xa0, 0x80]);
      case 3:
        return Buffer.from(JSON.stringify({ reason: this.ascii(this.int(100)), n: this.rand() }));
      case 4:
        return Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`);
      case 5:
        return Buffer.alloc(70 * 1024 + this.int(1024), 0x61);
      default:
        return Buffer.from('{"unterminated": ');
    }
  }

  /** Writes `chunks` on a fresh connection and collects the answer until close or OP_MS. */
  exchange(chunks: Buffer[], opts: { end?: boolean; afterUpgrade?: (s: Socket) => void } = {}): Promise<{ statuses: number[]; text: string }> {
    return new Promise((resolve) => {
      const s = connect(this.port, '127.0.0.1');
      let text = '';
      let upgraded = false;
      const timer = setTimeout(() => s.destroy(), OP_MS);
      s.on('error', () => {});
      s.on('connect', () => {
        for (const c of chunks) if (!s.destroyed) s.write(c);
        if (opts.end) s.end();
      });
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (!upgraded && opts.afterUpgrade && /^HTTP\/1\.1 101 /.test(text) && text.includes('\r\n\r\n')) {
          upgraded = true;
          opts.afterUpgrade(s);
        }
      });
      s.on('close', () => {
        clearTimeout(timer);
        const statuses = [...text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
        resolve({ statuses, text });
      });
    });
  }

  /**
   * `publicPath`: the request may have been for the dashboard's public part, where a 2xx without
   * the token is right. A session cookie is never right: no request here holds a login link.
   */
  judge(kind: string, a: Auth, statuses: number[], detail: string, o: { publicPath?: boolean; text?: string } = {}): void {
    const t = this.#tally;
    const where = `#${this.n} ${kind}`;
    for (const st of statuses) {
      t.statuses[st] = (t.statuses[st] ?? 0) + 1;
      if (a !== 'right' && !o.publicPath && ((st >= 200 && st < 300) || st === 101)) t.violations.push(`${where}: ${st} without the token: ${detail}`);
      if (st === 500) t.violations.push(`${where}: 500: ${detail}`);
    }
    // Clearing a cookie (logout: empty value) is fine; handing one out is not.
    for (const m of (o.text ?? '').matchAll(/\r\nset-cookie:\s*[^=\r\n]*=([^;\r\n]*)/gi)) {
      if (m[1] !== '') t.violations.push(`${where}: a session cookie without a login link: ${detail}`);
    }
  }

  requestFor(a: Auth): { buf: Buffer; publicPath: boolean } {
    const path = this.path(a);
    const method = this.method(a, path);
    const version = this.pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 extra', '']);
    const body = this.rand() < 0.5 ? this.body() : Buffer.alloc(0);
    const lenHeader = this.rand() < 0.8 ? [`Content-Length: ${body.length}`] : [];
    const head = [`${method} ${path} ${version}`, `Host: 127.0.0.1:${this.port}`, ...this.authHeader(a), ...this.headers(), ...lenHeader].join('\r\n');
    return { buf: Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]), publicPath: /^\/(login|logout|assets\/)/.test(path) };
  }

  upgradeHead(a: Auth, opts: { path?: string; bad?: boolean } = {}): string {
    const path = opts.path ?? this.pick(['/api/logs?units=ticker&follow=1', '/api/events', '/api/logs', '/api/logs?units=nope', '/api/units', '/nowhere']);
    const tokenInQuery = a === 'right' && this.rand() < 0.3;
    const lines = [
      `GET ${path}${tokenInQuery ? `${path.includes('?') ? '&' : '?'}token=${this.token}` : ''} HTTP/1.1`,
      `Host: 127.0.0.1:${this.port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${opts.bad ? this.pick(['', 'short', '!!!!', randomBytes(20).toString('base64')]) : randomBytes(16).toString('base64')}`,
      `Sec-WebSocket-Version: ${opts.bad ? this.pick(['8', '14', 'x', '']) : '13'}`,
      ...(tokenInQuery ? [] : this.authHeader(a)),
    ];
    if (this.rand() < 0.1) lines.push('Origin: http://evil.example');
    if (this.rand() < 0.1) lines.push('Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits');
    return `${lines.join('\r\n')}\r\n\r\n`;
  }

  /** A client→server frame; `mask: false` and reserved bits/opcodes are protocol errors. */
  frame(opcode: number, payload: Buffer, o: { mask?: boolean; fin?: boolean; rsv?: number; declaredLength?: bigint } = {}): Buffer {
    const mask = o.mask ?? true;
    const first = ((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | (opcode & 0x0f);
    const len = o.declaredLength ?? BigInt(payload.length);
    let header: Buffer;
    if (len < 126n) header = Buffer.from([first, (mask ? 0x80 : 0) | Number(len)]);
    else if (len < 65536n) {
      header = Buffer.alloc(4);
      header[0] = first;
      header[1] = (mask ? 0x80 : 0) | 126;
      header.writeUInt16BE(Number(len), 2);
    } else {
      header = Buffer.alloc(10);
      header[0] = first;
      header[1] = (mask ? 0x80 : 0) | 127;
      header.writeBigUInt64BE(len, 2);
    }
    if (!mask) return Buffer.concat([header, payload]);
    const key = randomBytes(4);
    const masked = Buffer.from(payload);
    for (let i = 0; i < masked.length; i++) masked[i] = masked[i]! ^ key[i % 4]!;
    return Buffer.concat([header, key, masked]);
  }

  /** What a misbehaving client sends once upgraded. */
  afterUpgrade(): Buffer[] {
    switch (this.int(10)) {
      case 0:
        return [this.bytes(1 + this.int(4096))];
      case 1:
        return [this.frame(0x1, Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]))]; // invalid UTF-8 text
      case 2:
        return [this.frame(0x1, Buffer.from('{"type":"hello"}'), { mask: false })]; // unmasked
      case 3:
        return [this.frame(0x3 + this.int(5), this.bytes(10))]; // reserved opcode
      case 4:
        return [this.frame(0x1, Buffer.from('x'), { rsv: 1 + this.int(7) })]; // RSV bits without an extension
      case 5:
        return [this.frame(0x2, this.bytes(16), { declaredLength: 1n << 62n })]; // absurd length
      case 6:
        return [this.frame(0x2, Buffer.alloc(64 * 1024 + 1 + this.int(4096), 0x62))]; // over maxPayload
      case 7:
        return [this.frame(0x9, this.bytes(200))]; // ping over 125 bytes
      case 8:
        return [this.frame(0x8, Buffer.from([0x03, 0xe7 + this.int(10), 0xff]))]; // close with bad code / UTF-8
      default:
        return [this.frame(0x1, Buffer.from('{"a":'), { fin: false }), this.frame(0x9, Buffer.from('p'), { fin: false })]; // fragmented control frame
    }
  }

  async op(): Promise<void> {
    const a = this.auth();
    const kind = this.pick(['http', 'http', 'http', 'http-truncated', 'http-pipelined', 'garbage', 'upgrade-truncated', 'upgrade-bad', 'upgrade-garbage', 'upgrade-garbage', 'ws-client']);
    this.#tally.kinds[kind] = (this.#tally.kinds[kind] ?? 0) + 1;
    switch (kind) {
      case 'http': {
        const { buf, publicPath } = this.requestFor(a);
        const r = await this.exchange([buf], { end: this.rand() < 0.5 });
        return this.judge(kind, a, r.statuses, buf.subarray(0, 120).toString('latin1'), { publicPath, text: r.text });
      }
      case 'http-truncated': {
        const { buf, publicPath } = this.requestFor(a);
        const r = await this.exchange([buf.subarray(0, this.int(buf.length))], { end: this.rand() < 0.7 });
        return this.judge(kind, a, r.statuses, buf.subarray(0, 120).toString('latin1'), { publicPath, text: r.text });
      }
      case 'http-pipelined': {
        const reqs = [this.requestFor(a), this.requestFor(a), this.requestFor(a)];
        const r = await this.exchange([Buffer.concat(reqs.map((q) => q.buf))], { end: true });
        return this.judge(kind, a, r.statuses, 'pipelined', { publicPath: reqs.some((q) => q.publicPath), text: r.text });
      }
      case 'garbage': {
        const r = await this.exchange([this.bytes(1 + this.int(3000))], { end: this.rand() < 0.5 });
        return this.judge(kind, 'none', r.statuses, 'garbage', { text: r.text });
      }
      case 'upgrade-truncated': {
        const head = Buffer.from(this.upgradeHead(a), 'latin1');
        const r = await this.exchange([head.subarray(0, this.int(head.length))], { end: this.rand() < 0.7 });
        return this.judge(kind, a, r.statuses, head.subarray(0, 80).toString('latin1'), { text: r.text });
      }
      case 'upgrade-bad': {
        const head = this.upgradeHead(a, { bad: true });
        const r = await this.exchange([Buffer.from(head, 'latin1')], { end: false });
        return this.judge(kind, a, r.statuses, head.slice(0, 80), { text: r.text });
      }
      case 'upgrade-garbage': {
        const head = this.upgradeHead(a);
        const after = this.afterUpgrade();
        const r = await this.exchange([Buffer.from(head, 'latin1')], {
          afterUpgrade: (s) => {
            for (const b of after) s.write(b);
            if (this.rand() < 0.5) s.end();
          },
        });
        return this.judge(kind, a, r.statuses, head.slice(0, 80), { text: r.text });
      }
      default:
        return this.wsClient(a);
    }
  }

  /** A real WebSocket client with odd parameters and messages, dropped at a random moment. */
  wsClient(a: Auth): Promise<void> {
    const path = this.pick(['/api/logs?units=ticker&follow=1&tail=3', '/api/logs?units=victim,ticker&since=abc', '/api/logs?follow=maybe', '/api/events', '/api/logs?units=nope', '/api/logs?tail=100000']);
    const headers: Record<string, string> = a === 'none' ? {} : { authorization: `Bearer ${a === 'right' ? this.token : 'wrong'}` };
    const messages = Array.from({ length: this.int(4) }, () => (this.rand() < 0.5 ? this.ascii(this.int(200)) : this.bytes(this.rand() < 0.2 ? 70_000 : this.int(300))));
    const lifeMs = this.int(400);
    const terminate = this.rand() < 0.5;
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${this.port}${path}`, { headers, handshakeTimeout: OP_MS });
      const hard = setTimeout(() => ws.terminate(), OP_MS);
      let status = 0;
      ws.on('unexpected-response', (_req, res) => {
        status = res.statusCode ?? 0;
        res.resume();
        ws.terminate();
      });
      ws.on('upgrade', () => (status = 101));
      ws.on('error', () => {});
      ws.on('open', () => {
        for (const m of messages) ws.send(m);
        setTimeout(() => (terminate ? ws.terminate() : ws.close()), lifeMs);
      });
      ws.on('close', () => {
        clearTimeout(hard);
        if (status) this.judge('ws-client', a, [status], path);
        resolve();
      });
    });
  }
}

interface Follower {
  ticks: number[];
  seqs: number[];
  gaps: string[];
  closed: string | undefined;
  ws: WebSocket;
}

function follow(ctl: ControlInfo): Promise<Follower> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ctl.port}/api/logs?units=ticker&follow=1&tail=0`, { headers: { authorization: `Bearer ${ctl.token}` } });
    const f: Follower = { ticks: [], seqs: [], gaps: [], closed: undefined, ws };
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { type: string; lines?: { seq: number; line: string; stream: string }[]; seq?: number; line?: string; stream?: string };
      const lines = frame.type === 'logs' ? frame.lines! : frame.type === 'log' ? [frame as { seq: number; line: string; stream: string }] : [];
      if (frame.type === 'gap') f.gaps.push(JSON.stringify(frame));
      for (const l of lines) {
        f.seqs.push(l.seq);
        const m = /^tick (\d+)$/.exec(l.line);
        if (l.stream === 'stdout' && m) f.ticks.push(Number(m[1]));
      }
    });
    ws.on('close', (code, reason) => (f.closed = `${code} ${String(reason)}`));
    ws.on('error', reject);
    ws.on('open', () => resolve(f));
  });
}

function contiguous(xs: number[]): string | undefined {
  for (let i = 1; i < xs.length; i++) if (xs[i] !== xs[i - 1]! + 1) return `${xs[i - 1]} then ${xs[i]} at index ${i}`;
  return undefined;
}

describe('fault injection: fuzzing the control API', () => {
  it(`${MAX_OPS} random and malformed HTTP/WebSocket operations (or ${MAX_MS / 1000} s): the daemon stays up and keeps serving`, async () => {
    const seed = seedFromEnv();
    console.log(`[fault-fuzz] seed ${seed} (replay with FAULT_SEED=${seed})`);
    const run = newRun();
    const dir = cleanups.project();
    writeConfig(
      dir,
      `{ units: {
        ticker: { command: ${tickerCommand(run, 'ticker', 50)} },
        victim: { command: ${treeCommand(run, 'victim')}, healthcheck: { log: '^ready ', interval: '100ms' }, stop: { timeout: '2s' },
                  restart: { policy: 'always', backoff: { initial: '50ms', max: '300ms' }, maxRestarts: 100000, window: '10m' } },
      } }`,
    );
    const watch = cleanups.watch(run);
    const d = cleanups.daemon(dir);
    const ctl = await d.control();
    await d.allHealthy(['ticker', 'victim']);
    const follower = await follow(ctl);
    cleanups.add(() => follower.ws.terminate());
    await waitFor(() => follower.ticks.length >= 3, { message: 'first ticks' });

    // GET /api/units every 200 ms all along.
    let polling = true;
    const pollLatency: number[] = [];
    const pollFailures: string[] = [];
    const poller = (async () => {
      while (polling) {
        const t = Date.now();
        try {
          const rows = await d.units();
          if (rows.length !== 2) pollFailures.push(`rows ${rows.length}`);
          pollLatency.push(Date.now() - t);
        } catch (err) {
          pollFailures.push(String(err));
        }
        watch.scan();
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    const fuzz: Tally = { kinds: {}, statuses: {}, violations: [] };
    const t0 = Date.now();
    let done = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < MAX_OPS && Date.now() - t0 < MAX_MS) {
          await new Fuzzer(seed, next++, ctl, fuzz).op();
          done++;
        }
      }),
    );
    const fuzzMs = Date.now() - t0;

    // The follower is live and complete: it catches up with the newest tick a fresh reader sees.
    const latest = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${ctl.port}/api/logs?units=ticker&tail=5`, { headers: { authorization: `Bearer ${ctl.token}` } });
      let last = 0;
      ws.on('message', (data) => {
        for (const m of String(data).matchAll(/"tick (\d+)"/g)) last = Math.max(last, Number(m[1]));
      });
      ws.on('close', () => resolve(last));
      ws.on('error', reject);
    });
    await waitFor(() => (follower.ticks.at(-1) ?? 0) >= latest, { timeout: 30_000, message: `follower reaching tick ${latest}` });
    polling = false;
    await poller;

    expect(d.running, d.output()).toBe(true);
    expect(readControl(dir)?.pid).toBe(d.pid);
    expect(follower.closed).toBeUndefined();
    expect(follower.gaps).toEqual([]);
    expect(contiguous(follower.seqs), 'seq').toBeUndefined();
    expect(contiguous(follower.ticks), 'ticks').toBeUndefined();
    expect(pollFailures).toEqual([]);
    expect(fuzz.violations).toEqual([]);
    expect(watch.duplicates).toEqual([]);
    // The daemon still does its job: the victim (restarted and stopped at random) can be started
    // and becomes healthy as one tree.
    const started = await d.api('POST', '/api/units/victim/start');
    expect(started.status).toBe(200);
    const victim = await d.allHealthy(['victim', 'ticker']);
    await waitFor(() => {
      const c = watch.scan();
      return TreeWatch.whole(c, ['victim']) && TreeWatch.pids(c, 'victim', 'parent')[0] === victim.get('victim')!.pid;
    }, { message: 'victim one tree' });
    expect(d.output()).not.toMatch(/Unhandled|TypeError|RangeError|uncaught/i);

    const lat = stats(pollLatency);
    console.log(
      `[fault-fuzz] seed ${seed}: ${done} operations in ${fuzzMs} ms (${CONCURRENCY} at a time): ${JSON.stringify(fuzz.kinds)}; answers ${JSON.stringify(fuzz.statuses)}; violations ${fuzz.violations.length}`,
    );
    console.log(
      `[fault-fuzz] follower: ${follower.ticks.length} ticks (${follower.ticks[0]}..${follower.ticks.at(-1)}), ${follower.seqs.length} lines with contiguous seq, 0 gaps; ` +
        `GET /api/units answered ${lat.n} times (mean ${lat.mean} ms, max ${lat.max} ms), 0 failures`,
    );
    expect(await d.signal('SIGTERM')).toBe(0);
    expect(watch.stillAlive()).toEqual([]);
  }, 240_000);
});

