// verify through the web, as the browser does: a real server (domain list, login), a real web
// server that forwards /api/proxy/* to its NEXTAPI_URL and serves a sign-in page whose script
// loads the domains through that proxy, and headless Chromium (playwright-core, the machine's
// /usr/bin/chromium) signing in. A wrong NEXTAPI_URL must fail naming it.

import { accessSync, constants } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bkliteWebVerify } from '../examples/bklite/checks.ts';
import type { ResolvedVerifyCheck, VerifyCheck } from '../src/config/types.ts';
import { resolveConfig } from '../src/config/validate.ts';
import { formatVerifyReport, runVerify } from '../src/verify.ts';
import { DEFAULT_CHROMIUM } from '../src/verify-browser.ts';

const SIGNIN = `<!doctype html><html><body>
<form id="f"><input type="hidden" name="domain" id="domain"><div id="domains"></div>
<input name="username"><input type="password" name="password"><button type="submit">Sign in</button></form>
<script>
fetch('/api/proxy/core/api/get_domain_list/').then(r => r.json()).then(j => {
  for (const d of j.data || []) { const o = document.createElement('div'); o.textContent = d; document.getElementById('domains').append(o); document.getElementById('domain').value = d; }
});
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = JSON.stringify({ username: e.target.username.value, password: e.target.password.value, domain: document.getElementById('domain').value });
  const j = await (await fetch('/api/proxy/core/api/login/', { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json();
  if (j.result) location.href = '/';
});
</script></body></html>`;

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of req) s += String(chunk);
  return s;
}

let server: { server: Server; url: string };
let web: { server: Server; url: string };
/** The web's NEXTAPI_URL: what web/.env.local says, changed by the tests. */
let nextApiUrl = '';

beforeAll(async () => {
  server = await listen((req, res) => {
    void (async () => {
      if (req.url === '/api/v1/core/api/get_domain_list/') return json(res, { result: true, data: ['domain.com'] });
      if (req.url === '/api/v1/core/api/login/' && req.method === 'POST') {
        const b = JSON.parse(await readBody(req)) as { username?: string; password?: string };
        return json(res, b.username === 'admin' && b.password === 'password' ? { result: true, data: { token: 't0ken-value' } } : { result: false, message: 'bad login' });
      }
      res.writeHead(404).end();
    })();
  });
  web = await listen((req, res) => {
    void (async () => {
      if (req.url === '/auth/signin') return void res.writeHead(200, { 'content-type': 'text/html' }).end(SIGNIN);
      if (req.url === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<p>welcome</p>');
      if (req.url?.startsWith('/api/proxy/')) {
        try {
          const body = req.method === 'POST' ? await readBody(req) : undefined;
          const r = await fetch(`${nextApiUrl}/api/v1/${req.url.slice('/api/proxy/'.length)}`, { method: req.method ?? 'GET', headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body } : {}) });
          return void res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text());
        } catch {
          return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"result":false,"message":"upstream unreachable"}');
        }
      }
      res.writeHead(404).end();
    })();
  });
});

afterAll(async () => {
  for (const s of [server, web]) {
    s.server.closeAllConnections();
    await new Promise((r) => s.server.close(r));
  }
});

function resolveChecks(checks: VerifyCheck[]): ResolvedVerifyCheck[] {
  const r = resolveConfig({ units: { x: { command: 'true' } }, verify: checks }, { file: '/tmp/x.ts', cwd: '/tmp' });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return [...r.config.verify];
}

const hasChromium = ((): boolean => {
  try {
    accessSync(DEFAULT_CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();

describe('the web-path verify of the BK-Lite stack', () => {
  it('passes through the proxy and, with Chromium, signs in as admin on /auth/signin', async () => {
    nextApiUrl = server.url;
    const report = await runVerify(resolveChecks(bkliteWebVerify({ serverUrl: server.url, webUrl: web.url, nextApiUrl })));
    const text = formatVerifyReport(report);
    expect(report.ok, text).toBe(true);
    expect(report.results.map((r) => r.name)).toEqual([
      'the login page lists domain.com',
      'admin can log in',
      'the web proxy lists domain.com (NEXTAPI_URL reaches the server)',
      'admin signs in at /auth/signin (headless Chromium)',
    ]);
    // CI installs chromium: there the browser check must really run.
    expect(report.results[3]!.skipped ?? false).toBe(!hasChromium);
    if (hasChromium) expect(report.results[3]!.detail).toMatch(/^5 step\(s\) passed at http:\/\/127\.0\.0\.1:\d+\/$/);
  }, 180_000);

  it('a wrong NEXTAPI_URL: the server checks pass, the web-path checks fail naming NEXTAPI_URL and its value', async () => {
    const dead = await listen(() => undefined);
    const deadUrl = dead.url;
    dead.server.close();
    nextApiUrl = deadUrl;
    const checks = resolveChecks(bkliteWebVerify({ serverUrl: server.url, webUrl: web.url, nextApiUrl })).map((c) => ({ ...c, timeoutMs: 20_000 }));
    const report = await runVerify(checks);
    expect(report.results.map((r) => r.ok)).toEqual([true, true, false, !hasChromium]);
    const proxy = report.results[2]!.detail;
    expect(proxy).toContain('HTTP 500');
    expect(proxy).toContain(`NEXTAPI_URL of web/.env.local (now ${deadUrl}); it must be ${server.url}`);
    if (hasChromium) {
      expect(report.results[3]!.detail).toMatch(/^step 1 \(wait for text "domain\.com"\): .*NEXTAPI_URL/);
    }
    expect(formatVerifyReport(report)).not.toContain('password"');
  }, 180_000);

  it('a browser check without a Chromium is skipped, saying why; a failing step never shows what was typed', async () => {
    nextApiUrl = server.url;
    const [skipped] = resolveChecks([{ name: 'sign in', browser: { url: `${web.url}/auth/signin`, executablePath: '/nonexistent/chromium' } }]);
    const r1 = await runVerify([skipped!]);
    expect(r1.ok).toBe(true);
    expect(r1.results[0]).toMatchObject({ skipped: true, detail: 'skipped: no Chromium at /nonexistent/chromium (install chromium, or set BKSUP_CHROMIUM to one)' });
    expect(formatVerifyReport(r1)).toContain('verify: all 1 checks passed (1 skipped)');
    if (!hasChromium) return;
    const [bad] = resolveChecks([
      // Filling a button fails at once (not an input), however slow Chromium is to start.
      { name: 'sign in', timeout: '2m', browser: { url: `${web.url}/auth/signin`, steps: [{ fill: 'input[type="password"]', value: 'hunter2-secret' }, { fill: 'button[type="submit"]', value: 'hunter2-secret' }] } },
    ]);
    const r2 = await runVerify([bad!]);
    expect(r2.ok).toBe(false);
    expect(r2.results[0]!.detail).toMatch(/^step 2 \(fill button\[type="submit"\]\): .*not an <input>/);
    expect(r2.results[0]!.detail).not.toContain('hunter2-secret');
  }, 180_000);

  it('the config names what is wrong with a browser check', () => {
    const r = resolveConfig(
      { units: { x: { command: 'true' } }, verify: [{ name: 'a', url: 'http://127.0.0.1:1/', browser: { url: 'http://127.0.0.1:1/' } }, { name: 'b', browser: { url: 'http://127.0.0.1:1/', steps: [{ typo: 1 }] } }] } as never,
      { file: '/tmp/x.ts', cwd: '/tmp' },
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.join('\n')).toContain('verify[0]: a check has either url (HTTP) or browser (headless Chromium), not both');
    expect(r.errors.join('\n')).toMatch(/verify\[1\]\.browser\.steps\[0\]: expected a step: \{ waitForText \}, \{ fill, value \}, \{ click \} or \{ waitForUrlNot \}/);
  });
});
