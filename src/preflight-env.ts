// The dotenv files a unit requires (`requires: [{ file, create, template, expect }]`): BK-Lite's
// server/.env and web/.env.local are gitignored, so a fresh clone has neither, and a copy made
// by hand often points elsewhere (a blank NATS_SERVERS makes nats_listener dial 4222 and loop).
//
// - missing + `create`: written (only when `write` is set, i.e. by `up`) from `template`'s lines
//   with the known keys filled in, then the known keys the template lacks; a value of
//   '${random}' becomes 32 random characters (NEXTAUTH_SECRET). Never overwrites.
// - present + `expect`: every key that does not point at the stack is a problem naming file,
//   key, value found and value expected. URLs compare scheme, host (127.0.0.1 = localhost),
//   port, user and password, not the path (a Redis db index is the user's choice). Secret
//   values (names with PASS, SECRET, TOKEN, KEY, or a URL's password) are never printed.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseDotenv } from './config/dotenv.ts';
import type { ResolvedConfig, ResolvedRequiredFile } from './config/types.ts';
import type { Problem } from './preflight.ts';
import { isSecretName, redactUrl } from './util/redact.ts';

export interface EnvFileResult {
  problems: Problem[];
  notes: string[];
}

/** Checks (and with `write`, creates) every dotenv file the enabled units require, each file once. */
export function checkEnvFiles(config: ResolvedConfig, opts: { write: boolean }): EnvFileResult {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const seen = new Set<string>();
  for (const name of config.order) {
    const u = config.units[name]!;
    if (!u.enabled) continue;
    for (const r of u.requires) {
      if (seen.has(r.file)) continue;
      seen.add(r.file);
      const shown = relative(config.root, r.file) || r.file;
      if (!existsSync(r.file)) {
        if (!r.create) {
          problems.push({ unit: name, message: `${r.file} is missing${r.hint ? ` (${r.hint})` : ''}` });
        } else if (!opts.write) {
          notes.push(`${shown} is missing: \`up\` will create it with the stack's values (${Object.keys(r.create).join(', ')})`);
        } else {
          const made = createEnvFile(r);
          if (made.ok) notes.push(`created ${shown}${made.from ? ` from ${relative(config.root, made.from)}` : ''} with the stack's values (${Object.keys(r.create).join(', ')})`);
          else problems.push({ unit: name, message: `cannot create ${r.file}: ${made.reason}${r.hint ? ` (${r.hint})` : ''}` });
        }
        continue;
      }
      problems.push(...crossCheck(r, shown, name));
    }
  }
  return { problems, notes };
}

function crossCheck(r: ResolvedRequiredFile, shown: string, unit: string): Problem[] {
  const keys = Object.entries(r.expect);
  if (keys.length === 0) return [];
  let text: string;
  try {
    text = readFileSync(r.file, 'utf8');
  } catch (err) {
    return [{ unit, message: `cannot read ${r.file}: ${(err as Error).message}` }];
  }
  const parsed = parseDotenv(text);
  if (!parsed.ok) return [{ unit, message: `${shown} is not a valid dotenv file: ${parsed.errors.join('; ')}` }];
  const problems: Problem[] = [];
  for (const [key, expected] of keys) {
    const found = parsed.vars[key];
    if (found !== undefined && found.trim() !== '' && samePlace(found, expected)) continue;
    const what = found === undefined ? 'is not set' : found.trim() === '' ? 'is blank' : `is ${show(key, found)}`;
    problems.push({ unit, message: `${shown}: ${key} ${what}, expected ${show(key, expected)} (the stack's value; fix the file or delete it to have it created)` });
  }
  return problems;
}

/** Equal values, or URLs (comma-separated lists: any entry) pointing at the same server with the same credentials. */
export function samePlace(found: string, expected: string): boolean {
  if (found.trim() === expected.trim()) return true;
  const want = asUrl(expected);
  if (!want) return normalHost(found.trim()) === normalHost(expected.trim());
  return found.split(',').some((entry) => {
    const got = asUrl(entry.trim());
    return (
      got !== undefined &&
      got.protocol === want.protocol &&
      normalHost(got.hostname) === normalHost(want.hostname) &&
      (got.port || defaultPort(got.protocol)) === (want.port || defaultPort(want.protocol)) &&
      decodeURIComponent(got.username) === decodeURIComponent(want.username) &&
      decodeURIComponent(got.password) === decodeURIComponent(want.password)
    );
  });
}

function asUrl(v: string): URL | undefined {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return undefined;
  try {
    return new URL(v);
  } catch {
    return undefined;
  }
}

function normalHost(h: string): string {
  return ['localhost', '127.0.0.1', '[::1]', '::1'].includes(h.toLowerCase()) ? '127.0.0.1' : h.toLowerCase();
}

function defaultPort(protocol: string): string {
  return ({ 'http:': '80', 'https:': '443', 'redis:': '6379', 'nats:': '4222', 'postgres:': '5432', 'postgresql:': '5432' } as Record<string, string>)[protocol] ?? '';
}

function show(key: string, value: string): string {
  if (isSecretName(key)) return '(a secret, not shown)';
  return JSON.stringify(asUrl(value) ? redactUrl(value) : value);
}

type Created = { ok: true; from: string | undefined } | { ok: false; reason: string };

/** A `create` value that is made up when the file is written (a secret nobody else knows). */
export const RANDOM_VALUE = '${random}';

function createEnvFile(r: ResolvedRequiredFile): Created {
  const values = Object.fromEntries(Object.entries(r.create ?? {}).map(([k, v]) => [k, v === RANDOM_VALUE ? randomBytes(24).toString('base64url') : v]));
  const from = r.template !== undefined && existsSync(r.template) ? r.template : undefined;
  const lines: string[] = [];
  const filled = new Set<string>();
  if (from) {
    for (const line of readFileSync(from, 'utf8').split(/\r?\n/)) {
      const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=/.exec(line);
      const key = m?.[1];
      if (key !== undefined && Object.hasOwn(values, key) && !filled.has(key)) {
        lines.push(`${key}=${quote(values[key]!)}`);
        filled.add(key);
      } else {
        lines.push(line);
      }
    }
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  }
  const rest = Object.entries(values).filter(([k]) => !filled.has(k));
  if (rest.length > 0) {
    if (lines.length > 0) lines.push('', '# added by bk-supervisor: the dev stack it runs');
    for (const [k, v] of rest) lines.push(`${k}=${quote(v)}`);
  }
  try {
    // `wx`: never overwrite, even if the file appeared since the check.
    writeFileSync(r.file, `${lines.join('\n')}\n`, { flag: 'wx', mode: 0o600 });
    return { ok: true, from };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** Unquoted when safe for dotenv and the shell; double quotes otherwise. */
function quote(v: string): string {
  if (/^[A-Za-z0-9_./:@,+=-]*$/.test(v)) return v;
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}
