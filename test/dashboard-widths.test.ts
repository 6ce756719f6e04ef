// The dashboard at laptop widths, in real Chromium (Debian's /usr/bin/chromium through
// playwright-core), on a stack shaped like BK-Lite's (the same unit names and dependency levels,
// with `sleep`s standing in) whose table holds the long texts real runs produce: a failed unit
// with its last output, a failing probe, a pending unit naming what it waits for.
//
// At 1280, 1440, 1536 and 1920 px wide: no units-table cell breaks a word across lines, no button
// is cut off (by the window or by a scrolling box), every graph label renders at ≥ 11 px, and
// BK-Lite's whole graph is in view (its panel does not scroll).
// A screenshot of each width goes to $BKSUP_SCREENSHOTS (default <tmp>/bksup-dashboard-screenshots).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BKSUP, INDEX, controlFile } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

const SHOTS = process.env.BKSUP_SCREENSHOTS || join(tmpdir(), 'bksup-dashboard-screenshots');
const WIDTHS: readonly [number, number][] = [
  [1280, 800],
  [1440, 900],
  [1536, 864],
  [1920, 1080],
];
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let dir: string;
let daemon: ChildProcess | undefined;
let daemonExited: Promise<unknown> | undefined;
let browser: Browser | undefined;
let page: Page;

const daemonLog = (): string => {
  try {
    return readFileSync(join(dir, 'daemon.out'), 'utf8').slice(-3000);
  } catch {
    return '';
  }
};

function runBksup(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BKSUP, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'bksup-dash-widths-'));
  const closed = await freePort(); // nothing listens there: the server's probe keeps failing
  const svc = (ready?: string): string => JSON.stringify(ready ? `echo "${ready}"; exec sleep 1000` : 'exec sleep 1000');
  writeFileSync(
    join(dir, 'supervisor.config.ts'),
    `import { defineConfig } from ${JSON.stringify(INDEX)};
export default defineConfig({
  units: {
    postgres: { command: ${svc('database system is ready to accept connections')}, healthcheck: { log: 'ready to accept connections' } },
    redis: { command: ${svc()} },
    nats: { command: ${svc()} },
    minio: { command: ${svc()} },
    falkordb: { command: ${svc()} },
    'victoria-metrics': { command: ${svc()} },
    'victoria-logs': { command: ${svc()} },
    'install-server': { kind: 'task', command: 'echo "Resolved 212 packages in 3ms"', once: true },
    'install-web': { kind: 'task', command: 'echo "Lockfile is up to date, resolution step is skipped"', once: true },
    'mlflow-db': { kind: 'task', command: 'echo "databases created: mlflow"', dependsOn: { postgres: 'healthy' } },
    mlflow: {
      command: 'echo "alembic.util.exc.CommandError: Can\\'t locate revision identified by 0584bdc529eb (fingerprint of the mlflow schema)" >&2; exit 1',
      dependsOn: { 'mlflow-db': 'completed', minio: 'healthy' },
      restart: { policy: 'on-failure', maxRestarts: 0 },
    },
    'db-init': { kind: 'task', command: 'echo "Operations to perform: Apply all migrations"', dependsOn: { 'install-server': 'completed', postgres: 'healthy', redis: 'healthy', nats: 'healthy' } },
    nats_listener: { command: ${svc()}, dependsOn: { nats: 'healthy', 'db-init': 'completed' } },
    server: { command: ${svc()}, tty: true, dependsOn: { postgres: 'healthy', redis: 'healthy', nats: 'healthy', 'db-init': 'completed' }, healthcheck: { http: 'http://127.0.0.1:${closed}/admin/login/', interval: '1s' } },
    web: { command: ${svc()}, dependsOn: { server: 'healthy', 'install-web': 'completed' } },
  },
});
`,
  );
  const out = openSync(join(dir, 'daemon.out'), 'w');
  daemon = spawn(process.execPath, [BKSUP, 'up', '--no-color'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', out, out] });
  closeSync(out);
  const child = daemon;
  daemonExited = new Promise((r) => child.once('exit', r));
  await waitFor(() => controlFile(dir), { timeout: 60_000, message: `control.json (${daemonLog()})` });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on('pageerror', (err) => {
    throw new Error(`page error: ${err.message}`);
  });
}, 90_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (daemon && controlFile(dir)) await runBksup(['down']).catch(() => undefined);
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGKILL');
    await daemonExited;
  }
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** What the page measures of itself: see test/fixtures/dashboard/measure-layout.js. */
interface Layout {
  brokenWords: string[];
  clippedButtons: string[];
  pageOverflow: number;
  graphLabels: { text: string; px: number }[];
  graphHidden: number;
}
const MEASURE = readFileSync(join(import.meta.dirname, 'fixtures', 'dashboard', 'measure-layout.js'), 'utf8');

it('fits laptop widths: no word broken in the units table, no button cut off, the whole graph in view with labels ≥ 11 px', async () => {
  const r = await runBksup(['dashboard']);
  expect(r.code, r.stderr).toBe(0);
  await page.goto(r.stdout.trim());
  const state = (u: string): Promise<string | null> => page.locator(`#units tr[data-unit="${u}"]`).getAttribute('data-state');
  try {
    await waitFor(async () => (await state('mlflow')) === 'failed' && (await state('web')) === 'pending' && (await state('nats_listener')) === 'healthy', { timeout: 60_000, message: 'the stack settled (mlflow failed, web pending)' });
    await waitFor(async () => ((await page.locator('#units tr[data-unit="server"] td.health').textContent()) ?? '').includes('failing'), { message: "the server's failing probe in the table" });
  } catch (err) {
    throw new Error(`${(err as Error).message}\ndaemon: ${daemonLog()}`);
  }
  const problems: string[] = [];
  for (const [width, height] of WIDTHS) {
    await page.setViewportSize({ width, height });
    // Two frames: the resize has been laid out and painted.
    await page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
    await page.screenshot({ path: join(SHOTS, `dashboard-${width}.png`), fullPage: true });
    const m = (await page.evaluate(`${MEASURE}\nwindow.bksupMeasureLayout()`)) as Layout;
    expect(m.graphLabels.length).toBeGreaterThan(30);
    for (const w of m.brokenWords) problems.push(`${width}px: word broken in ${w}`);
    for (const b of m.clippedButtons) problems.push(`${width}px: button ${b}`);
    if (m.pageOverflow > 0) problems.push(`${width}px: the page scrolls sideways by ${m.pageOverflow}px`);
    for (const l of m.graphLabels) if (l.px < 11) problems.push(`${width}px: graph label "${l.text}" at ${l.px.toFixed(1)}px`);
    if (m.graphHidden > 0) problems.push(`${width}px: ${m.graphHidden}px of the graph are scrolled out of its panel`);
  }
  expect(problems, `screenshots in ${SHOTS}`).toEqual([]);
}, 120_000);
