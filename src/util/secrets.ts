// Which literal values must be masked wherever they appear (child output, reasons, events,
// supervisor.log, the terminal). Three sources:
// - the config's own env values with secret-looking names (PASS, SECRET, TOKEN, KEY…), and URL
//   passwords inside any env value;
// - variables inherited from the daemon's environment: a child inherits them and may print
//   them. The names are judged more strictly here (PASSWORD, SECRET, TOKEN, *_KEY…) and short or
//   trivial values are skipped, so that e.g. TOX_TESTENV_PASSENV or FOO_TOKEN=1 do not turn
//   every "1" into ***;
// - passwords written into the config itself: probe and task URLs (`postgres://u:pw@…`,
//   `redis://:pw@…`), the command, verify URLs, and fields such as a redis probe's `password`.

import type { ResolvedConfig, ResolvedUnit } from '../config/types.ts';
import { secretValues, urlPasswords } from './redact.ts';

const INHERITED_SECRET_NAME = /PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|APIKEY|(^|_)KEY$|_KEY_/i;
const TRIVIAL = /^(true|false|yes|no|on|off|null|none|\d{1,6})$/i;
const MIN_INHERITED = 6;

/** Secret values of the daemon's environment (what every child inherits). */
export function inheritedSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v.length < MIN_INHERITED || TRIVIAL.test(v)) continue;
    if (INHERITED_SECRET_NAME.test(k)) out.push(v);
  }
  return out;
}

/** Every string inside a config value (objects, arrays), with the key it sits under. */
function walk(value: unknown, key: string, visit: (key: string, s: string) => void, depth = 0): void {
  if (depth > 8) return;
  if (typeof value === 'string') return visit(key, value);
  if (Array.isArray(value)) {
    for (const v of value) walk(v, key, visit, depth + 1);
    return;
  }
  if (typeof value === 'object' && value !== null && !(value instanceof RegExp)) {
    for (const [k, v] of Object.entries(value)) walk(v, k, visit, depth + 1);
  }
}

/**
 * Fields that hold a secret by their very name (a redis probe's `password`). Exact names only:
 * map keys such as a dependency called `secret-store` must not make `healthy` a secret.
 */
const SECRET_FIELD = /^(password|passwd|pass|token|secret|api[_-]?key|auth)$/i;

/** URL passwords and secret fields anywhere inside `value`. */
function configSecrets(value: unknown): string[] {
  const strings: string[] = [];
  const named: string[] = [];
  walk(value, '', (key, s) => {
    strings.push(s);
    if (SECRET_FIELD.test(key) && s.length >= 4) named.push(s);
  });
  return [...urlPasswords(strings), ...named];
}

/** What one unit must mask: its env (config-set and inherited) and the secrets of its own config. */
export function unitSecrets(unit: ResolvedUnit): string[] {
  const inherited = Object.fromEntries(Object.entries(unit.env).filter(([k]) => !Object.hasOwn(unit.configEnv, k)));
  const { env: _env, configEnv, ...rest } = unit;
  return dedupe([
    ...secretValues(configEnv),
    ...urlPasswords(Object.values(unit.env)),
    ...inheritedSecrets(inherited),
    ...configSecrets(rest),
  ]);
}

/** What the daemon itself must mask (supervisor.log, the terminal, the fatal-error stack). */
export function daemonSecrets(config: ResolvedConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  // Verify checks contribute URL passwords only: a login body's `password: 'password'` (BK-Lite's
  // dev admin) would otherwise mask the word everywhere.
  const verifyStrings: string[] = [];
  walk(config.verify, '', (_k, s) => verifyStrings.push(s));
  return dedupe([...inheritedSecrets(env), ...Object.values(config.units).flatMap(unitSecrets), ...urlPasswords(verifyStrings)]);
}

/** Longest first, so a secret containing another is masked whole. */
function dedupe(values: string[]): string[] {
  return [...new Set(values)].sort((a, b) => b.length - a.length);
}
