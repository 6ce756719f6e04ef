// A `browser` verify check: what the user sees, in headless Chromium driven by playwright-core.
// Never downloads a browser: it uses the Chromium installed on the machine (executablePath,
// $BKSUP_CHROMIUM, else /usr/bin/chromium) and is skipped, saying why, when there is none.
// Steps run in order, each bounded by what is left of the check's timeout; a failure names the
// step. Values typed into the page (passwords) never reach a detail.

import { accessSync, constants } from 'node:fs';
import type { BrowserStep, ResolvedVerifyCheck } from './config/types.ts';
import { redactText } from './util/redact.ts';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** Quiet, sandbox-free, no network of its own (updates, sync, field trials). */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export type BrowserOutcome = { ok: true; detail: string; skipped?: true } | { ok: false; detail: string };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function chromiumPath(check: ResolvedVerifyCheck, env: NodeJS.ProcessEnv = process.env): string {
  return check.browser?.executablePath ?? (env['BKSUP_CHROMIUM'] || DEFAULT_CHROMIUM);
}

export async function runBrowserCheck(check: ResolvedVerifyCheck, signal?: AbortSignal): Promise<BrowserOutcome> {
  const spec = check.browser;
  if (!spec) return { ok: false, detail: 'not a browser check' };
  const path = chromiumPath(check);
  if (!executable(path)) {
    return { ok: true, skipped: true, detail: `skipped: no Chromium at ${path} (install chromium, or set BKSUP_CHROMIUM to one)` };
  }
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    return { ok: true, skipped: true, detail: 'skipped: playwright-core is not installed (npm install playwright-core)' };
  }
  const secrets = spec.steps.flatMap((s) => ('fill' in s ? [s.value] : []));
  const deadline = Date.now() + check.timeoutMs;
  const left = (): number => Math.max(1, deadline - Date.now());
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  let step = 'open the browser';
  const onAbort = (): void => void browser?.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    browser = await chromium.launch({ executablePath: path, headless: true, args: [...CHROMIUM_FLAGS], timeout: left() });
    const page = await browser.newPage();
    step = `open ${spec.url}`;
    await page.goto(spec.url, { waitUntil: 'domcontentloaded', timeout: left() });
    for (const [i, s] of spec.steps.entries()) {
      step = `step ${i + 1} (${describeStep(s)})`;
      await runStep(page, s, left());
    }
    return { ok: true, detail: `${spec.steps.length} step(s) passed at ${page.url()}` };
  } catch (err) {
    if (signal?.aborted) return { ok: false, detail: 'cancelled' };
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    return { ok: false, detail: redactText(`${step}: ${first}`, secrets) };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await browser?.close().catch(() => undefined);
  }
}

type Page = Awaited<ReturnType<Awaited<ReturnType<typeof import('playwright-core').chromium.launch>>['newPage']>>;

async function runStep(page: Page, s: BrowserStep, timeout: number): Promise<void> {
  if ('waitForText' in s) return page.getByText(s.waitForText).first().waitFor({ state: 'visible', timeout });
  if ('fill' in s) return page.fill(s.fill, s.value, { timeout });
  if ('click' in s) return page.click(s.click, { timeout });
  const re = new RegExp(s.waitForUrlNot);
  await page.waitForURL((u) => !re.test(u.toString()), { timeout });
}

function describeStep(s: BrowserStep): string {
  if ('waitForText' in s) return `wait for text ${JSON.stringify(s.waitForText)}`;
  if ('fill' in s) return `fill ${s.fill}`;
  if ('click' in s) return `click ${s.click}`;
  return `wait until the URL leaves /${s.waitForUrlNot}/`;
}
