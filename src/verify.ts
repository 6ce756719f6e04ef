// `verify`: the config's smoke checks, the "does the product really work" questions a green
// `status` cannot answer (the login page lists a domain; admin can log in). One HTTP request a
// check, its JSON reply judged by `expect`:
//
//   expect: {
//     'result': true,                        // dotted path → value: deep equality
//     'data': { contains: 'domain.com' },    // array has an element equal to it; string has it as a substring
//     'data.token': { exists: true },        // present and not null ({ exists: false }: absent or null)
//     'data.token': { matches: '^\\S{8,}$' },// the value (string or number) matches the regex
//     'data.items.0.id': { equals: { … } },  // explicit equality (for a value that looks like a matcher)
//   }
//
// An object whose keys are all matcher names (contains, exists, matches, equals) is a matcher;
// several keys must all hold. Any other value is compared for equality. Path segments that are
// numbers index arrays.
//
// Failures are values with a one-line detail. Nothing secret reaches a detail: string values of
// secret-named keys in the request (password, token, …) and header values are masked wherever
// they appear, and reply values under secret-named paths (data.token) are never echoed.

import { loadConfig } from './config/load.ts';
import type { ResolvedVerifyCheck } from './config/types.ts';
import { isSecretName, redactText, redactUrl } from './util/redact.ts';
import { runBrowserCheck } from './verify-browser.ts';

export interface VerifyResult {
  name: string;
  ok: boolean;
  detail: string;
  /** HTTP status of the reply, when there was one. */
  status?: number;
  /** A browser check that could not run here (no Chromium): `ok`, and said so. */
  skipped?: boolean;
  ms: number;
}

export interface VerifyReport {
  ok: boolean;
  results: VerifyResult[];
}

export interface VerifyOptions {
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch;
  /** Stops the run (checks not yet done fail with "cancelled"). */
  signal?: AbortSignal;
}

const MATCHER_KEYS = new Set(['contains', 'exists', 'matches', 'equals']);
const SHOWN_CHARS = 80;

type Matcher = { contains?: unknown; exists?: unknown; matches?: unknown; equals?: unknown };

export async function runVerify(checks: readonly ResolvedVerifyCheck[], opts: VerifyOptions = {}): Promise<VerifyReport> {
  const results: VerifyResult[] = [];
  for (const check of checks) results.push(await runCheck(check, opts));
  return { ok: results.every((r) => r.ok), results };
}

/** Lines for a terminal: `✓ name (12 ms)` / `✗ name: detail`, and a summary line. */
export function formatVerifyReport(report: VerifyReport): string {
  const lines = report.results.map((r) => (r.skipped ? `- ${r.name}: ${r.detail}` : r.ok ? `✓ ${r.name} (${r.ms} ms)` : `✗ ${r.name}: ${r.detail}`));
  const failed = report.results.filter((r) => !r.ok).length;
  const skipped = report.results.filter((r) => r.skipped).length;
  lines.push(
    report.results.length === 0
      ? 'verify: the config has no checks (add verify: [{ name, url, expect }])'
      : failed === 0
        ? `verify: all ${report.results.length} checks passed${skipped ? ` (${skipped} skipped)` : ''}`
        : `verify: ${failed} of ${report.results.length} checks failed`,
  );
  return `${lines.join('\n')}\n`;
}

export interface VerifyCommandOptions {
  cwd: string;
  configPath?: string;
  /** Only the checks with these names (all when empty). */
  only?: string[];
}

/**
 * `bksup verify`: loads the config, runs its checks, prints one line each.
 * Exit code 0 when all pass, 1 when one fails, 2 when the config is invalid or names an unknown check.
 */
export async function verifyCommand(opts: VerifyCommandOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const loaded = await loadConfig({ cwd: opts.cwd, ...(opts.configPath ? { configPath: opts.configPath } : {}) });
  if (!loaded.ok) {
    err.write(`config is not valid:\n${loaded.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 2;
  }
  const all = loaded.config.verify;
  const only = opts.only ?? [];
  const unknown = only.filter((n) => !all.some((c) => c.name === n));
  if (unknown.length > 0) {
    err.write(`unknown check${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => JSON.stringify(n)).join(', ')} (the config has: ${all.map((c) => JSON.stringify(c.name)).join(', ') || 'none'})\n`);
    return 2;
  }
  const report = await runVerify(only.length ? all.filter((c) => only.includes(c.name)) : all);
  out.write(formatVerifyReport(report));
  return report.ok ? 0 : 1;
}

async function runCheck(check: ResolvedVerifyCheck, opts: VerifyOptions): Promise<VerifyResult> {
  const result = check.browser ? await runBrowser(check, opts) : await runHttpCheck(check, opts);
  // The hint says where the request went through (e.g. NEXTAPI_URL), which the failure alone cannot.
  return !result.ok && check.hint ? { ...result, detail: `${result.detail} (${check.hint})` } : result;
}

async function runBrowser(check: ResolvedVerifyCheck, opts: VerifyOptions): Promise<VerifyResult> {
  const started = Date.now();
  const r = await runBrowserCheck(check, opts.signal);
  return { name: check.name, ok: r.ok, detail: r.detail, ...('skipped' in r && r.skipped ? { skipped: true } : {}), ms: Date.now() - started };
}

async function runHttpCheck(check: ResolvedVerifyCheck, opts: VerifyOptions): Promise<VerifyResult> {
  const started = Date.now();
  const secrets = secretsOf(check);
  const done = (ok: boolean, detail: string, status?: number): VerifyResult => ({
    name: check.name,
    ok,
    detail: ok ? detail : redactText(detail, secrets),
    ...(status !== undefined ? { status } : {}),
    ms: Date.now() - started,
  });
  if (opts.signal?.aborted) return done(false, 'cancelled');

  const headers: Record<string, string> = { accept: 'application/json', ...check.headers };
  let body: string | undefined;
  if (check.body !== undefined && check.method !== 'GET' && check.method !== 'HEAD') {
    if (typeof check.body === 'string') {
      body = check.body;
    } else {
      body = JSON.stringify(check.body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
  }

  const timeout = AbortSignal.timeout(check.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const target = `${check.method} ${redactUrl(check.url)}`;
  let status: number;
  let text: string;
  let contentType: string;
  try {
    const res = await (opts.fetch ?? fetch)(check.url, { method: check.method, headers, ...(body !== undefined ? { body } : {}), signal, redirect: 'manual' });
    status = res.status;
    contentType = res.headers.get('content-type') ?? '';
    text = await res.text();
  } catch (err) {
    if (opts.signal?.aborted) return done(false, 'cancelled');
    if (timeout.aborted) return done(false, `${target}: no reply within ${formatMs(check.timeoutMs)}`);
    return done(false, `${target}: ${describeFetchError(err)}`);
  }

  if (check.expectStatus !== undefined ? status !== check.expectStatus : status < 200 || status > 299) {
    const want = check.expectStatus !== undefined ? `expected ${check.expectStatus}` : 'expected 2xx';
    return done(false, `${target}: HTTP ${status}, ${want}${text ? ` (${excerpt(text)})` : ''}`, status);
  }

  const expectations = Object.entries(check.expect);
  if (expectations.length === 0) return done(true, `HTTP ${status}`, status);

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return done(false, `${target}: the reply is not JSON (HTTP ${status}${contentType ? `, ${contentType.split(';')[0]}` : ''}: ${excerpt(text) || 'empty'})`, status);
  }

  const problems: string[] = [];
  for (const [path, expected] of expectations) {
    const problem = judge(path, expected, json);
    if (problem) problems.push(problem);
  }
  return problems.length ? done(false, problems.join('; '), status) : done(true, `HTTP ${status}, ${expectations.length} expectation(s) met`, status);
}

// ------------------------------------------------------------------ judging

function isMatcher(v: unknown): v is Matcher {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => MATCHER_KEYS.has(k));
}

type Lookup = { found: true; value: unknown } | { found: false; missingAt: string };

/** `data.token` in the reply; array elements by index. */
export function lookup(root: unknown, path: string): Lookup {
  if (path === '' || path === '.') return { found: true, value: root };
  let cur = root;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    const key = parts[i]!;
    const here = parts.slice(0, i + 1).join('.');
    if (Array.isArray(cur) && /^\d+$/.test(key)) {
      const idx = Number(key);
      if (idx >= cur.length) return { found: false, missingAt: here };
      cur = cur[idx];
    } else if (cur !== null && typeof cur === 'object' && !Array.isArray(cur) && Object.hasOwn(cur, key)) {
      cur = (cur as Record<string, unknown>)[key];
    } else {
      return { found: false, missingAt: here };
    }
  }
  return { found: true, value: cur };
}

/** undefined when the reply meets the expectation at `path`; otherwise one sentence saying how not. */
export function judge(path: string, expected: unknown, reply: unknown): string | undefined {
  const name = path === '' || path === '.' ? 'the reply' : path;
  const at = lookup(reply, path);
  const got = (v: unknown): string => show(v, path);
  const missing = (): string => (at.found ? '' : at.missingAt === path ? `${name} is missing` : `${name} is missing (no ${at.missingAt})`);

  if (!isMatcher(expected)) {
    if (!at.found) return missing();
    return deepEqual(at.value, expected) ? undefined : `${name} is ${got(at.value)}, expected ${show(expected, path)}`;
  }

  const problems: string[] = [];
  if ('exists' in expected) {
    const wantPresent = expected.exists !== false;
    const present = at.found && at.value !== null && at.value !== undefined;
    if (wantPresent && !present) problems.push(at.found ? `${name} is null, expected a value` : missing());
    if (!wantPresent && present) problems.push(`${name} is present (${got(at.value)}), expected it absent`);
  }
  const needsValue = 'contains' in expected || 'matches' in expected || 'equals' in expected;
  if (needsValue && !at.found) {
    problems.push(missing());
    return [...new Set(problems)].join('; ');
  }
  const value = at.found ? at.value : undefined;
  if ('equals' in expected && !deepEqual(value, expected.equals)) {
    problems.push(`${name} is ${got(value)}, expected ${show(expected.equals, path)}`);
  }
  if ('contains' in expected) {
    const item = expected.contains;
    if (Array.isArray(value)) {
      if (!value.some((v) => deepEqual(v, item))) problems.push(`${name} does not contain ${show(item, path)} (got ${got(value)})`);
    } else if (typeof value === 'string' && typeof item === 'string') {
      if (!value.includes(item)) problems.push(`${name} does not contain ${show(item, path)} (got ${got(value)})`);
    } else {
      problems.push(`${name} is ${got(value)}, expected an array containing ${show(item, path)}`);
    }
  }
  if ('matches' in expected) {
    const re = compile(expected.matches);
    if (typeof re === 'string') problems.push(`${name}: ${re}`);
    else if (typeof value !== 'string' && typeof value !== 'number') problems.push(`${name} is ${got(value)}, expected a string matching /${re.source}/`);
    else if (!re.test(String(value))) problems.push(`${name} is ${got(value)}, which does not match /${re.source}/`);
  }
  return problems.length ? problems.join('; ') : undefined;
}

function compile(pattern: unknown): RegExp | string {
  if (typeof pattern !== 'string') return `matches needs a regular expression string, got ${typeof pattern}`;
  try {
    return new RegExp(pattern);
  } catch (err) {
    return `invalid regular expression /${pattern}/: ${(err as Error).message}`;
  }
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

// ------------------------------------------------------------------ text

/** A reply value for a message: JSON, shortened; masked when the path names a secret (data.token). */
function show(v: unknown, path: string): string {
  const last = path.split('.').pop() ?? '';
  if (isSecretName(last) && typeof v === 'string' && v.length > 0) return '"***"';
  if (v === undefined) return 'undefined';
  const s = JSON.stringify(v, (k, val: unknown) => (k && isSecretName(k) && typeof val === 'string' && val ? '***' : val)) ?? String(v);
  return s.length > SHOWN_CHARS ? `${s.slice(0, SHOWN_CHARS - 3)}...` : s;
}

function excerpt(text: string): string {
  const flat = text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/("[A-Za-z_]*(?:pass(?:word)?|secret|token|api[_-]?key)[A-Za-z_]*"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, '$1"***"');
  return flat.length > SHOWN_CHARS ? `${flat.slice(0, SHOWN_CHARS - 3)}...` : flat;
}

/** String values under secret-named keys of the body (any depth), and every header value. */
function secretsOf(check: ResolvedVerifyCheck): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      if (isSecretName(key)) out.push(v);
    } else if (Array.isArray(v)) {
      for (const item of v) walk(item, key);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) walk(item, k);
    }
  };
  walk(check.body, '');
  for (const value of Object.values(check.headers)) {
    out.push(value);
    const bearer = /^\s*\S+\s+(\S{4,})\s*$/.exec(value);
    if (bearer?.[1]) out.push(bearer[1]);
  }
  return out.filter((s) => s.length > 0);
}

function describeFetchError(err: unknown): string {
  // undici wraps the socket error: TypeError('fetch failed') with cause { code, address, port }.
  const cause = (err as { cause?: { code?: string; address?: string; port?: number; message?: string } } | undefined)?.cause;
  const code = cause?.code;
  const where = cause?.address ? `${cause.address}${cause.port ? `:${cause.port}` : ''}` : '';
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused${where ? ` at ${where}` : ''} (is the server running?)`;
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return `the connection was closed before a reply${where ? ` (${where})` : ''}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found${cause?.message ? ` (${cause.message})` : ''}`;
    default:
      if (code) return `${code}${cause?.message ? `: ${cause.message}` : ''}`;
      return err instanceof Error ? err.message : String(err);
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms} ms`;
}
