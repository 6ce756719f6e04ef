// verify against a real HTTP server on loopback: status, JSON paths, matchers, timeouts, and
// no secret in any detail.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedVerifyCheck } from '../src/config/types.ts';
import { formatVerifyReport, judge, runVerify, verifyCommand } from '../src/verify.ts';
import { freePort } from './helpers/ports.ts';

let server: Server;
let base: string;
let domains: string[] = ['domain.com'];
const seenBodies: unknown[] = [];

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (c: Buffer) => (s += c.toString()));
    req.on('end', () => resolve(s));
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? '/';
      if (url === '/domains') return json(res, 200, { result: true, data: domains });
      if (url === '/login' && req.method === 'POST') {
        const text = await readBody(req);
        const body = JSON.parse(text) as { username?: string; password?: string; domain?: string };
        seenBodies.push({ body, contentType: req.headers['content-type'] });
        if (body.username === 'admin' && body.password === 's3cret-pass' && body.domain === 'domain.com') {
          return json(res, 200, { result: true, data: { token: 'tok-0123456789abcdef', username: 'admin' } });
        }
        return json(res, 200, { result: false, message: 'Username or password is incorrect' });
      }
      if (url === '/html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end('<!doctype html><title>login</title>');
      }
      if (url === '/boom') return json(res, 500, { result: false, message: 'System error occurred', token: 'leaky-token-value' });
      if (url === '/slow') return; // never answers
      if (url === '/echo-auth') return json(res, 403, { got: req.headers.authorization });
      json(res, 404, { result: false });
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function check(c: Partial<ResolvedVerifyCheck> & { name: string; url: string }): ResolvedVerifyCheck {
  return { method: c.body !== undefined ? 'POST' : 'GET', browser: undefined, hint: undefined, headers: {}, body: undefined, expectStatus: undefined, expect: {}, timeoutMs: 5000, ...c };
}

const domainCheck = (): ResolvedVerifyCheck =>
  check({ name: 'domain list contains domain.com', url: `${base}/domains`, expect: { result: true, data: { contains: 'domain.com' } } });
const loginCheck = (password: string): ResolvedVerifyCheck =>
  check({
    name: 'admin can log in',
    url: `${base}/login`,
    body: { username: 'admin', password, domain: 'domain.com' },
    expect: { result: true, 'data.token': { exists: true, matches: '^\\S{8,}$' } },
  });

describe('runVerify against a real HTTP server', () => {
  it('passes the seed checks: domain list and login with a token', async () => {
    domains = ['domain.com'];
    const report = await runVerify([domainCheck(), loginCheck('s3cret-pass')]);
    expect(report.results.map((r) => [r.name, r.ok, r.status])).toEqual([
      ['domain list contains domain.com', true, 200],
      ['admin can log in', true, 200],
    ]);
    expect(report.ok).toBe(true);
    // The body went out as JSON with a content type.
    expect(seenBodies.at(-1)).toEqual({ body: { username: 'admin', password: 's3cret-pass', domain: 'domain.com' }, contentType: 'application/json' });
    expect(formatVerifyReport(report)).toMatch(/✓ domain list contains domain\.com.*\n✓ admin can log in.*\nverify: all 2 checks passed\n$/);
  });

  it('says what is missing when the login page has no domains (the listener was never started)', async () => {
    domains = [];
    const report = await runVerify([domainCheck()]);
    expect(report.ok).toBe(false);
    expect(report.results[0]!.detail).toBe('data does not contain "domain.com" (got [])');
    domains = ['domain.com'];
  });

  it('a failed login names result and token, and never prints the password', async () => {
    const report = await runVerify([loginCheck('wrong-password-xyz')]);
    const r = report.results[0]!;
    expect(r.ok).toBe(false);
    expect(r.detail).toContain('result is false, expected true');
    expect(r.detail).toContain('data.token is missing');
    expect(r.detail).not.toContain('wrong-password-xyz');
    expect(formatVerifyReport(report)).toContain('verify: 1 of 1 checks failed');
  });

  it('does not echo a token from the reply, even in a failure', async () => {
    const r = judge('data.token', { matches: '^x' }, { data: { token: 'tok-0123456789abcdef' } });
    expect(r).toContain('data.token is "***"');
    expect(r).not.toContain('tok-0123');
    const report = await runVerify([check({ name: 'boom', url: `${base}/boom` })]);
    expect(report.results[0]!.detail).toMatch(/HTTP 500, expected 2xx/);
    expect(report.results[0]!.detail).not.toContain('leaky-token-value');
  });

  it('masks header values (Authorization) in details', async () => {
    const report = await runVerify([check({ name: 'auth', url: `${base}/echo-auth`, headers: { authorization: 'Bearer abcdefgh12345678' }, expectStatus: 200 })]);
    expect(report.results[0]!.detail).toMatch(/HTTP 403, expected 200/);
    expect(report.results[0]!.detail).not.toContain('abcdefgh12345678');
  });

  it('expectStatus other than 2xx can be asked for', async () => {
    const report = await runVerify([check({ name: '404 wanted', url: `${base}/nope`, expectStatus: 404, expect: { result: false } })]);
    expect(report.results[0]).toMatchObject({ ok: true, status: 404 });
  });

  it('a non-JSON reply fails an expectation with the content type and an excerpt', async () => {
    const report = await runVerify([check({ name: 'html', url: `${base}/html`, expect: { result: true } })]);
    expect(report.results[0]!.detail).toMatch(/the reply is not JSON \(HTTP 200, text\/html: <!doctype html><title>login<\/title>\)/);
    const noExpect = await runVerify([check({ name: 'html ok', url: `${base}/html` })]);
    expect(noExpect.results[0]).toMatchObject({ ok: true, detail: 'HTTP 200' });
  });

  it('is bounded by timeoutMs', async () => {
    const started = Date.now();
    const report = await runVerify([check({ name: 'slow', url: `${base}/slow`, timeoutMs: 300 })]);
    expect(report.results[0]!.detail).toMatch(/no reply within 300 ms/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a refused connection says so', async () => {
    const port = await freePort();
    const report = await runVerify([check({ name: 'down', url: `http://127.0.0.1:${port}/x` })]);
    expect(report.results[0]!.detail).toMatch(/connection refused at 127\.0\.0\.1:\d+ \(is the server running\?\)/);
  });

  it('a cancelled run fails the remaining checks', async () => {
    const ac = new AbortController();
    ac.abort();
    const report = await runVerify([domainCheck()], { signal: ac.signal });
    expect(report.results[0]).toMatchObject({ ok: false, detail: 'cancelled' });
  });
});

describe('judge: the expect language', () => {
  const reply = { result: true, data: { token: 'abc12345', items: [{ id: 1 }, { id: 2 }], name: 'bk-lite', count: 3, none: null }, list: ['a', 'b'] };

  it('plain values compare deeply', () => {
    expect(judge('result', true, reply)).toBeUndefined();
    expect(judge('data.items', [{ id: 1 }, { id: 2 }], reply)).toBeUndefined();
    expect(judge('data.items.1.id', 2, reply)).toBeUndefined();
    expect(judge('data.count', 4, reply)).toBe('data.count is 3, expected 4');
    expect(judge('data.items', [{ id: 1 }], reply)).toMatch(/^data\.items is \[.*\], expected \[\{"id":1\}\]$/);
  });

  it('contains: array elements (deep) and substrings', () => {
    expect(judge('list', { contains: 'b' }, reply)).toBeUndefined();
    expect(judge('data.items', { contains: { id: 2 } }, reply)).toBeUndefined();
    expect(judge('data.name', { contains: 'lite' }, reply)).toBeUndefined();
    expect(judge('list', { contains: 'z' }, reply)).toBe('list does not contain "z" (got ["a","b"])');
    expect(judge('data.count', { contains: 'z' }, reply)).toBe('data.count is 3, expected an array containing "z"');
  });

  it('exists and its negation', () => {
    expect(judge('data.token', { exists: true }, reply)).toBeUndefined();
    expect(judge('data.none', { exists: true }, reply)).toBe('data.none is null, expected a value');
    expect(judge('data.nope', { exists: true }, reply)).toBe('data.nope is missing');
    expect(judge('x.y.z', { exists: true }, reply)).toBe('x.y.z is missing (no x)');
    expect(judge('data.nope', { exists: false }, reply)).toBeUndefined();
    expect(judge('data.count', { exists: false }, reply)).toBe('data.count is present (3), expected it absent');
  });

  it('matches: regex on strings and numbers; a bad regex is reported', () => {
    expect(judge('data.name', { matches: '^bk-' }, reply)).toBeUndefined();
    expect(judge('data.count', { matches: '^\\d+$' }, reply)).toBeUndefined();
    expect(judge('data.items', { matches: 'x' }, reply)).toMatch(/expected a string matching \/x\//);
    expect(judge('data.name', { matches: '(' }, reply)).toMatch(/invalid regular expression/);
  });

  it('equals is explicit equality, for values that look like matchers', () => {
    expect(judge('m', { equals: { exists: true } }, { m: { exists: true } })).toBeUndefined();
    expect(judge('m', { exists: true }, { m: { exists: false } })).toBeUndefined(); // a matcher: m is present
  });

  it('"" or "." is the whole reply', () => {
    expect(judge('', { contains: 'a' }, ['a'])).toBeUndefined();
    expect(judge('.', { exists: true }, {})).toBeUndefined();
  });
});

describe('verifyCommand: `bksup verify`', () => {
  let dir: string;
  const out = (): { stream: Writable; text: () => string } => {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    });
    return { stream, text: () => text };
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bksup-verify-cmd-'));
    writeFileSync(
      join(dir, 'supervisor.config.ts'),
      `import { defineConfig } from ${JSON.stringify(join(import.meta.dirname, '..', 'src', 'index.ts'))};
export default defineConfig({
  units: { noop: { command: 'true' } },
  verify: [
    { name: 'domains', url: '${base}/domains', expect: { result: true, data: { contains: 'domain.com' } } },
    { name: 'login', url: '${base}/login', body: { username: 'admin', password: 'not-it', domain: 'domain.com' }, expect: { result: true } },
  ],
});
`,
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the config’s checks: exit 1 when one fails, 0 when the chosen ones pass', async () => {
    domains = ['domain.com'];
    const o = out();
    const e = out();
    expect(await verifyCommand({ cwd: dir }, o.stream, e.stream)).toBe(1);
    expect(o.text()).toMatch(/^✓ domains \(\d+ ms\)\n✗ login: result is false, expected true\nverify: 1 of 2 checks failed\n$/);
    expect(o.text()).not.toContain('not-it');

    const o2 = out();
    expect(await verifyCommand({ cwd: dir, only: ['domains'] }, o2.stream, e.stream)).toBe(0);
    expect(o2.text()).toMatch(/verify: all 1 checks passed/);
  });

  it('exit 2 for an unknown check name or an invalid config', async () => {
    const e = out();
    expect(await verifyCommand({ cwd: dir, only: ['nope'] }, out().stream, e.stream)).toBe(2);
    expect(e.text()).toBe('unknown check "nope" (the config has: "domains", "login")\n');
    const e2 = out();
    expect(await verifyCommand({ cwd: tmpdir(), configPath: join(dir, 'missing.ts') }, out().stream, e2.stream)).toBe(2);
    expect(e2.text()).toMatch(/config is not valid:\n {2}.*missing\.ts: config file not found/);
  });
});
