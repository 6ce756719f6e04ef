// The dashboard end to end in real Chromium (Debian's /usr/bin/chromium driven by playwright-core)
// on the demo stack (examples/bklite-demo: real PostgreSQL, redis-server, nats-server and the
// Node stand-ins) plus two fixture units, `bulk` (100,000 lines of history) and `flood` (floods
// on demand), all under the real CLI (`bksup up`) in a temp directory with free ports:
//
//   bksup dashboard → one-time link → cookie (HttpOnly, SameSite=Strict), no token left in the URL
//   every unit reaches healthy (tasks completed) in the graph; verify shows both checks passing
//   restart button → the node goes through stopping to healthy with a new pid
//   stop asks first (cancel does nothing), start brings the unit back
//   an invalid config edit: a banner with the errors, gone once the config is fixed, pids unchanged
//   follow the server's logs: a line it prints after the page loaded shows up; filter highlights
//   100,000 lines of history: all held, only the visible rows in the DOM, filter finds one line
//   flood while the page is paused (debugger): nothing is dropped for it, no gap row once it runs again
//   another server on 127.0.0.1 and its page: no session cookie reaches it, no WebSocket, no action
//   without the cookie: 401 and the page that says how to log in
//
// Screenshots go to $BKSUP_SCREENSHOTS (default <tmp>/bksup-dashboard-screenshots).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BKSUP, controlFile } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { parseMetrics, value } from './helpers/prometheus.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = join(import.meta.dirname, '..');
const FIXTURES = join(import.meta.dirname, 'fixtures', 'dashboard');
const SHOTS = process.env.BKSUP_SCREENSHOTS || join(tmpdir(), 'bksup-dashboard-screenshots');
const PROCESS_UNITS = ['postgres', 'redis', 'nats', 'mlflow', 'nats_listener', 'server', 'web', 'bulk', 'flood'];
const TASK_UNITS = ['pg-initdb', 'mlflow-db', 'db-init'];
const BULK_LINES = 100_000;
/** The flags this machine needs (no sandbox as root, no calls home on a closed network). */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let dir: string;
let userDataDir: string;
let ports: Record<string, number>;
let daemon: ChildProcess | undefined;
let daemonExited: Promise<number | null> | undefined;
let ctx: BrowserContext | undefined;
let page: Page;
let base: string;
let otherSite: Server | undefined;

interface UnitRow {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
}

function control(): { port: number; token: string; pid: number } {
  const c = controlFile(dir);
  if (!c) throw new Error('no daemon (control.json missing)');
  return c;
}

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const c = control();
  return fetch(`http://127.0.0.1:${c.port}${path}`, { ...init, headers: { authorization: `Bearer ${c.token}` } });
}

async function unit(name: string): Promise<UnitRow> {
  const rows = (await (await api('/api/units')).json()) as UnitRow[];
  const r = rows.find((u) => u.name === name);
  if (!r) throw new Error(`no unit ${name}`);
  return r;
}

/**
 * A request to the dashboard under its own name (`bksup-<random>.localhost`, which Chromium
 * resolves to loopback and Node does not): to 127.0.0.1 with that name as Host, or any other
 * Host and headers a replaying attacker would forge.
 */
function dash(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: control().port, method, path, headers: { host: new URL(base).host, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function daemonLog(): string {
  try {
    const text = readFileSync(join(dir, 'daemon.out'), 'utf8');
    return text.slice(-3000);
  } catch {
    return '';
  }
}

function runBksup(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BKSUP, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function shot(name: string, target?: { selector: string }): Promise<string> {
  const file = join(SHOTS, `${name}.png`);
  if (target) await page.locator(target.selector).screenshot({ path: file });
  else await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * The little of the browser's globals the page functions below use. This file is compiled
 * without the DOM library (the project is Node code); inside page.evaluate they are the real ones.
 */
interface BrowserEl {
  dataset: Record<string, string | undefined>;
}
interface BrowserWindow {
  document: { cookie: string; querySelector(sel: string): BrowserEl | null; getElementById(id: string): BrowserEl | null };
  MutationObserver: new (cb: () => void) => { observe(target: BrowserEl, opts: object): void };
  __seen: string[];
}

const nodeState = (name: string): Promise<string | null> => page.locator(`#graph g.node[data-unit="${name}"]`).getAttribute('data-state');

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'bksup-dash-e2e-'));
  chmodSync(dir, 0o755); // PostgreSQL runs unprivileged when the tests run as root
  ports = {
    POSTGRES_PORT: await freePort(),
    REDIS_PORT: await freePort(),
    NATS_PORT: await freePort(),
    SERVER_PORT: await freePort(),
    WEB_PORT: await freePort(),
    MLFLOW_PORT: await freePort(),
  };
  const extra = {
    bulk: { description: `prints ${BULK_LINES} lines at start`, command: [process.execPath, join(FIXTURES, 'bulk.mjs')], env: { BULK_LINES: String(BULK_LINES) } },
    // 100-byte lines: the 100,000+ lines of the flood (~10 MB) stay within what the log files keep
    // (10 MB × 6 files), so whatever the frozen page misses still exists and must reach it. With
    // 1000-byte lines they would be rotated away and a gap would be the right answer.
    flood: { description: 'floods its output on SIGUSR2', command: [process.execPath, join(FIXTURES, 'flood.mjs')], env: { FLOOD_LINE_BYTES: '100' } },
  };
  writeFileSync(
    join(dir, 'supervisor.config.ts'),
    [
      `import { defineConfig } from ${JSON.stringify(join(REPO, 'src', 'index.ts'))};`,
      `import { demoConfig } from ${JSON.stringify(join(REPO, 'examples', 'bklite-demo', 'stack.ts'))};`,
      'export default defineConfig(() => {',
      `  const config = demoConfig({ root: import.meta.dirname, dataDir: 'data', overrides: ${JSON.stringify(ports)} });`,
      `  Object.assign(config.units, ${JSON.stringify(extra)});`,
      '  return config;',
      '});',
      '',
    ].join('\n'),
  );
  // The terminal output of `up` (every line of every unit, floods included) goes to a file.
  const out = openSync(join(dir, 'daemon.out'), 'w');
  daemon = spawn(process.execPath, [BKSUP, 'up', '--no-color'], { cwd: dir, env: { ...process.env, NO_COLOR: '1', WEB_COMPILE_MS: '200' }, stdio: ['ignore', out, out] });
  closeSync(out);
  const child = daemon;
  daemonExited = new Promise((r) => child.once('exit', (code) => r(code)));
  await waitFor(() => controlFile(dir), { timeout: 60_000, message: `control.json (${daemonLog()})` });

  userDataDir = mkdtempSync(join(tmpdir(), 'bksup-chromium-'));
  ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
  });
  page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('pageerror', (err) => {
    throw new Error(`page error: ${err.message}`);
  });
}, 120_000);

afterAll(async () => {
  await ctx?.close().catch(() => undefined);
  otherSite?.close();
  if (daemon && controlFile(dir)) await runBksup(['down']).catch(() => undefined);
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGKILL');
    await daemonExited;
  }
  rmSync(dir, { recursive: true, force: true });
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}, 120_000);

describe('the dashboard in Chromium on the demo stack', () => {
  it('bksup dashboard prints a one-time link; the page trades it for an HttpOnly SameSite=Strict cookie', async () => {
    const r = await runBksup(['dashboard']);
    expect(r.code, r.stderr).toBe(0);
    const link = r.stdout.trim();
    const c = control();
    // Under the daemon's own host name, never 127.0.0.1: a cookie set there would reach every local server.
    expect(link).toMatch(new RegExp(`^http://bksup-[0-9a-f]{16}\\.localhost:${c.port}/login\\?t=[0-9a-f]{64}$`));
    expect(link).not.toContain(c.token);
    base = new URL(link).origin;

    await page.goto(link);
    await page.waitForURL(`${base}/`);
    await page.locator('#graph g.node').first().waitFor();
    const cookies = await ctx!.cookies(base);
    expect(cookies).toHaveLength(1);
    // Host-only (no leading dot): sent to this name only.
    expect(cookies[0]).toMatchObject({ name: `bksup_session_${c.port}`, domain: new URL(base).hostname, httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(await ctx!.cookies(`http://127.0.0.1:${c.port}`)).toEqual([]);
    expect(cookies[0]!.value).not.toBe(c.token);
    expect(await page.evaluate(() => (globalThis as unknown as BrowserWindow).document.cookie)).toBe(''); // HttpOnly: no script can read it
    // The token is gone from the address bar and from the history entries.
    const cdp = await ctx!.newCDPSession(page);
    const nav = (await cdp.send('Page.getNavigationHistory')) as { entries: { url: string }[] };
    expect(nav.entries.map((e) => e.url).filter((u) => u.includes('t='))).toEqual([]);
    await cdp.detach();
    // `up` printed a link of its own among its first lines (to the terminal only).
    const printed = /bksup: dashboard: (http:\/\/\S+\/login\?t=[0-9a-f]{64}) /.exec(readFileSync(join(dir, 'daemon.out'), 'utf8'));
    expect(printed, daemonLog()).not.toBeNull();
    const upToken = new URL(printed![1]!).searchParams.get('t');
    expect(readFileSync(join(dir, 'logs', 'supervisor.log'), 'utf8')).not.toContain(upToken);
    const viaUp = await dash('POST', '/login', { origin: base }, JSON.stringify({ token: upToken }));
    expect(viaUp.status).toBe(204);
    // Used once: the same link again does not log anyone in.
    const again = await dash('POST', '/login', { origin: base }, JSON.stringify({ token: new URL(link).searchParams.get('t') }));
    expect(again.status).toBe(401);
  }, 60_000);

  it('shows every unit reaching healthy (tasks completed) in the graph, and verify passing', async () => {
    try {
      await page.waitForFunction(
        ({ procs, tasks }) => {
          const doc = (globalThis as unknown as BrowserWindow).document;
          const st = (n: string): string | undefined => doc.querySelector(`#graph g.node[data-unit="${n}"]`)?.dataset.state;
          return procs.every((n) => st(n) === 'healthy') && tasks.every((n) => ['completed', 'skipped'].includes(st(n) ?? ''));
        },
        { procs: PROCESS_UNITS, tasks: TASK_UNITS },
        { timeout: 180_000, polling: 250 },
      );
    } catch (err) {
      await shot('01-not-healthy');
      const states = await page.locator('#graph g.node').evaluateAll((els) => els.map((e) => `${(e as unknown as BrowserEl).dataset.unit}=${(e as unknown as BrowserEl).dataset.state}`));
      throw new Error(`${(err as Error).message}\nnodes: ${states.join(', ')}\ndaemon: ${daemonLog()}`);
    }
    // Edges carry their condition; the table has a row per unit with state and pid.
    expect(await page.locator('#graph .edge-labels text').allTextContents()).toEqual(expect.arrayContaining(['healthy', 'completed']));
    const serverRow = page.locator('#units tr[data-unit="server"]');
    await expect.poll(() => serverRow.locator('.pill').textContent()).toBe('healthy');
    expect(await serverRow.locator('td.pid').textContent()).toBe(String((await unit('server')).pid));
    expect(await serverRow.locator('td.health').textContent()).toContain('passing');
    await page.locator('#verify li').nth(1).waitFor({ timeout: 60_000 });
    expect(await page.locator('#verify .ok').count()).toBe(2);
    expect(await page.locator('#verify-summary').textContent()).toBe('verify ✓ 2/2');
    await page.locator('#log-stats').waitFor();
    await shot('01-all-healthy');
  }, 240_000);

  it('restart: the node goes through stopping to healthy with a new pid', async () => {
    const oldPid = (await unit('server')).pid;
    expect(await page.locator('#graph g.node[data-unit="server"]').getAttribute('data-pid')).toBe(String(oldPid));
    // Every state the node shows, however briefly, recorded in the page.
    await page.evaluate(() => {
      const w = globalThis as unknown as BrowserWindow;
      const node = w.document.querySelector('#graph g.node[data-unit="server"]')!;
      const seen: string[] = [node.dataset.state ?? ''];
      w.__seen = seen;
      new w.MutationObserver(() => {
        const s = node.dataset.state ?? '';
        if (seen[seen.length - 1] !== s) seen.push(s);
      }).observe(node, { attributes: true, attributeFilter: ['data-state'] });
    });
    await page.locator('button[data-unit="server"][data-action="restart"]').click();
    await page.waitForFunction(
      (old) => {
        const w = globalThis as unknown as BrowserWindow;
        const node = w.document.querySelector('#graph g.node[data-unit="server"]')!;
        const seen = w.__seen;
        return seen.includes('stopping') && node.dataset.state === 'healthy' && node.dataset.pid !== '' && node.dataset.pid !== String(old);
      },
      oldPid,
      { timeout: 60_000 },
    );
    const seen = await page.evaluate(() => (globalThis as unknown as BrowserWindow).__seen);
    expect(seen[0]).toBe('healthy');
    expect(seen.indexOf('stopping')).toBeGreaterThan(0);
    expect(seen.slice(seen.indexOf('stopping'))).toEqual(expect.arrayContaining(['starting', 'running']));
    expect(seen[seen.length - 1]).toBe('healthy');
    const now = await unit('server');
    expect(now.pid).not.toBe(oldPid);
    expect(await page.locator('#graph g.node[data-unit="server"]').getAttribute('data-pid')).toBe(String(now.pid));
    await shot('02-after-restart', { selector: '#graph-panel' });
  }, 90_000);

  it('stop asks first (cancel leaves it running); start brings it back', async () => {
    const stop = page.locator('button[data-unit="mlflow"][data-action="stop"]');
    await stop.click();
    const dialog = page.locator('dialog#confirm');
    await dialog.waitFor({ state: 'visible' });
    expect(await page.locator('#confirm-text').textContent()).toContain('Stop mlflow?');
    await shot('03-confirm-stop');
    await page.locator('#confirm-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    expect((await unit('mlflow')).state).toBe('healthy');

    await stop.click();
    await page.locator('#confirm-ok').click();
    await expect.poll(() => nodeState('mlflow'), { timeout: 30_000 }).toBe('stopped');
    expect((await unit('mlflow')).state).toBe('stopped');
    await page.locator('button[data-unit="mlflow"][data-action="start"]').click();
    await expect.poll(() => nodeState('mlflow'), { timeout: 60_000 }).toBe('healthy');
  }, 120_000);

  it('a refused config reload shows as a banner until the config is fixed; no process is touched', async () => {
    const file = join(dir, 'supervisor.config.ts');
    const good = readFileSync(file, 'utf8');
    const pids = async (): Promise<string> => ((await (await api('/api/units')).json()) as UnitRow[]).map((u) => `${u.name}:${u.pid}`).join(' ');
    const before = await pids();
    writeFileSync(file, good.replace('  return config;', "  config.units.bulk.dependsOn = { nope: 'healthy' };\n  return config;"));
    const banner = page.locator('#reload-banner');
    await banner.waitFor({ state: 'visible', timeout: 30_000 });
    expect(await banner.textContent()).toContain('units.bulk.dependsOn.nope: unknown unit "nope"');
    await shot('03b-reload-refused', { selector: '#reload-banner' });
    writeFileSync(file, good);
    await banner.waitFor({ state: 'hidden', timeout: 30_000 });
    expect(await pids()).toBe(before);
  }, 90_000);

  it("follows a unit's logs: a line printed after the page loaded shows up, the filter highlights it", async () => {
    await page.locator('button[data-unit="server"][data-action="logs"]').click();
    await expect.poll(() => page.locator('#log-units input[data-unit="server"]').isChecked()).toBe(true);
    expect(await page.locator('#log-units input:checked').count()).toBe(1);
    await page.locator('#log-rows .row[data-unit="server"]').first().waitFor();
    expect(await page.locator('#log-follow').isChecked()).toBe(true);

    const marker = `dashboard-e2e-${randomUUID()}`;
    // The server stand-in logs every request that is not a successful GET.
    const res = await fetch(`http://127.0.0.1:${ports.SERVER_PORT}/${marker}`);
    expect(res.status).toBe(404);
    const row = page.locator('#log-rows .row', { hasText: marker });
    await row.waitFor({ timeout: 30_000 });
    expect(await row.getAttribute('data-unit')).toBe('server');

    await page.locator('#log-filter').fill(marker);
    await expect.poll(() => page.locator('#log-stats').getAttribute('data-shown')).toBe('1');
    expect(await page.locator('#log-rows .row mark').textContent()).toBe(marker);
    await shot('04-logs-follow', { selector: '#logs-panel' });
    await page.locator('#log-filter').fill('');
    await expect.poll(() => page.locator('#log-stats').getAttribute('data-shown')).toBe(await page.locator('#log-stats').getAttribute('data-lines'));
  }, 60_000);

  it('holds 100,000 lines of history, renders only the visible rows, marks stderr', async () => {
    await page.locator('#log-tail').selectOption('100000');
    await page.locator('button[data-unit="bulk"][data-action="logs"]').click();
    await page.waitForFunction((n) => Number((globalThis as unknown as BrowserWindow).document.getElementById('log-stats')!.dataset.lines) >= n, BULK_LINES, { timeout: 60_000 });
    // Exactly the history asked for, plus whatever bulk said since (a line every 5 s).
    const held = Number(await page.locator('#log-stats').getAttribute('data-lines'));
    expect(held).toBeGreaterThanOrEqual(BULK_LINES);
    expect(held).toBeLessThan(BULK_LINES + 10);
    const rows = await page.locator('#log-rows .row').count();
    expect(rows).toBeGreaterThan(10);
    expect(rows).toBeLessThan(200);
    // The spacer gives the scroll height of all of them.
    await expect
      .poll(() => page.evaluate(() => {
        const doc = (globalThis as unknown as { document: { getElementById(id: string): { dataset: Record<string, string>; getBoundingClientRect(): { height: number } } } }).document;
        return doc.getElementById('log-spacer').getBoundingClientRect().height - Number(doc.getElementById('log-stats').dataset.shown) * 18;
      }))
      .toBe(0);
    // Scroll to the top: following stops, the oldest lines are there.
    await page.locator('#log-view').evaluate((v) => (v.scrollTop = 0));
    await expect.poll(() => page.locator('#log-follow').isChecked()).toBe(false);
    // bulk printed its lines right after it started: the oldest kept are among its first seqs.
    await expect.poll(async () => Number(await page.locator('#log-rows .row').first().getAttribute('data-seq'))).toBeLessThan(1000);
    expect(await page.locator('#log-rows .row .txt', { hasText: /^bulk line \d+$/ }).count()).toBeGreaterThan(0);
    expect(await page.locator('#log-stats').getAttribute('data-gaps')).toBe('0');
    await shot('05-logs-100k-top', { selector: '#logs-panel' });
    // Every tenth bulk line went to stderr: marked, and a filter of their own.
    await page.locator('#log-stderr').check();
    await expect.poll(() => page.locator('#log-stats').getAttribute('data-shown'), { timeout: 20_000 }).toBe(String(BULK_LINES / 10));
    expect(await page.locator('#log-rows .row:not(.stderr)').count()).toBe(0);
    expect(await page.locator('#log-rows .row.stderr .tag').first().textContent()).toBe('ERR');
    await shot('05-logs-100k-stderr', { selector: '#logs-panel' });
    await page.locator('#log-stderr').uncheck();
    // A regex filter over all of them finds the one line.
    await page.locator('#log-filter').fill('/^bulk line 77777$/');
    await expect.poll(() => page.locator('#log-stats').getAttribute('data-shown'), { timeout: 20_000 }).toBe('1');
    expect(await page.locator('#log-rows .row .txt').first().textContent()).toBe('bulk line 77777');
    await page.locator('#log-filter').fill('');
    await page.locator('#log-follow').check();
    await page.locator('#log-tail').selectOption('1000');
  }, 120_000);

  it('a flooding unit a frozen page cannot keep up with: nothing is dropped, the page gets the lines once it runs again, no gap row', async () => {
    await page.locator('button[data-unit="flood"][data-action="logs"]').click();
    await page.locator('#log-rows .row[data-unit="flood"]').first().waitFor({ timeout: 30_000 });
    const floodPid = (await unit('flood')).pid!;
    const metrics = async (): Promise<{ dropped: number; flood: number }> => {
      const m = parseMetrics(await (await api('/metrics')).text());
      return { dropped: value(m, 'bksup_ws_dropped_lines_total') ?? 0, flood: value(m, 'bksup_log_lines_total', { unit: 'flood', stream: 'stdout' }) ?? 0 };
    };
    const before = await metrics();
    // Freeze the page's JavaScript (as a busy tab would be): it stops reading its WebSocket.
    const cdp = await ctx!.newCDPSession(page);
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.pause');
    process.kill(floodPid, 'SIGUSR2');
    try {
      await waitFor(async () => (await metrics()).flood > before.flood + 100_000, { timeout: 60_000, interval: 200, message: 'the flood printing while the page is frozen' });
    } finally {
      process.kill(floodPid, 'SIGUSR2');
      await cdp.send('Debugger.resume');
      await cdp.detach();
    }
    const linesBefore = Number(await page.locator('#log-stats').getAttribute('data-lines'));
    await waitFor(async () => Number(await page.locator('#log-stats').getAttribute('data-lines')) > linesBefore, { timeout: 30_000, message: 'the page receiving again' });
    expect((await metrics()).dropped).toBe(before.dropped);
    expect(Number(await page.locator('#log-stats').getAttribute('data-gaps'))).toBe(0);
    expect(await page.locator('#log-next-gap').isHidden()).toBe(true);
  }, 120_000);

  it('another server on 127.0.0.1 and its pages get nothing usable: no cookie, no WebSocket, no action, and a replay of what they got fails', async () => {
    // What a dev server's request log would keep: every header of every request it received.
    const received: IncomingHttpHeaders[] = [];
    otherSite = createServer((req, res) => {
      received.push(req.headers);
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>another app</title><p>another app on this machine</p><img src="/pixel.png">');
    });
    const otherPort = await freePort();
    await new Promise<void>((r) => otherSite!.listen(otherPort, '127.0.0.1', r));
    const c = control();
    const other = await ctx!.newPage();
    try {
      // The browser is logged in to the dashboard (first test) and visits the other app.
      expect((await ctx!.cookies(base)).map((k) => k.name)).toEqual([`bksup_session_${c.port}`]);
      await other.goto(`http://127.0.0.1:${otherPort}/`);
      await other.evaluate(() => fetch('/api/whatever', { credentials: 'include' }).then((r) => r.text()));
      const result = await other.evaluate(
        async ({ port, dashOrigin }) => {
          const tryWs = (url: string): Promise<string> =>
            new Promise<string>((resolve) => {
              const s = new WebSocket(url);
              s.onopen = () => resolve('open');
              s.onerror = () => resolve('error');
              s.onclose = () => resolve('closed');
            });
          const ws = [await tryWs(`ws://127.0.0.1:${port}/api/events`), await tryWs(`${dashOrigin.replace('http', 'ws')}/api/events`)];
          // "Simple" cross-origin POSTs reach the server (no preflight): they must not act.
          for (const o of [`http://127.0.0.1:${port}`, dashOrigin]) {
            await fetch(`${o}/api/units/web/stop`, { method: 'POST', mode: 'no-cors', credentials: 'include' }).catch(() => undefined);
          }
          const read = await fetch(`${dashOrigin}/api/units`, { credentials: 'include' }).then(
            () => 'read',
            () => 'blocked',
          );
          return { ws, read };
        },
        { port: c.port, dashOrigin: base },
      );
      expect(result.ws).toEqual(['error', 'error']);
      expect(result.read).toBe('blocked');
      expect(['stopping', 'stopped'], 'web was not stopped').not.toContain((await unit('web')).state);

      expect(received.length).toBeGreaterThanOrEqual(2);
      const cookies = received.map((h) => h.cookie ?? '');
      expect(cookies.filter((k) => k.includes('bksup_session')), 'session cookies the other server received').toEqual([]);
      // Whatever it did get, replayed with curl-style forged Host and Origin, opens nothing.
      for (const h of received) {
        const replay = { ...(h.cookie ? { cookie: h.cookie } : {}), origin: base };
        expect((await dash('GET', '/api/units', replay)).status).toBe(401);
        expect((await dash('POST', '/api/units/web/stop', replay)).status).toBe(401);
        expect((await dash('GET', '/api/units', { ...replay, host: `127.0.0.1:${c.port}`, origin: `http://127.0.0.1:${c.port}` })).status).toBe(401);
      }
      expect(['stopping', 'stopped'], 'web was not stopped').not.toContain((await unit('web')).state);
    } finally {
      await other.close();
    }
  }, 60_000);

  it('without the cookie the page answers 401 and says how to log in; with it, all is there', async () => {
    const res = await dash('GET', '/', { accept: 'text/html' });
    expect(res.status).toBe(401);
    expect((await dash('GET', '/metrics')).status).toBe(401);
    await ctx!.clearCookies();
    const answer = await page.goto(`${base}/`);
    expect(answer?.status()).toBe(401);
    expect(await page.locator('body').textContent()).toContain('npx bksup dashboard');
    await shot('07-unauthorized');
  }, 60_000);
});
