// Durations in the config are human strings ('100ms', '10s', '5m', '1h', '1.5s') or a number of
// milliseconds. Everything past src/config/ only ever sees milliseconds.

export type ParseResult = { ok: true; ms: number } | { ok: false; error: string };

export const DURATION_HINT = "use e.g. '100ms', '10s', '5m' or a number of milliseconds";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

// One number and one unit. Compound forms ('1m30s') are left out on purpose: one obvious way
// to write a duration keeps error messages and docs short.
const DURATION_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)$/;

export function parseDuration(input: unknown): ParseResult {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return { ok: false, error: `invalid duration ${String(input)} (${DURATION_HINT})` };
    if (input < 0) return { ok: false, error: `invalid duration ${input}: must not be negative (${DURATION_HINT})` };
    return { ok: true, ms: Math.round(input) };
  }
  if (typeof input !== 'string') {
    return { ok: false, error: `invalid duration: expected a string or a number, got ${describeType(input)} (${DURATION_HINT})` };
  }
  const text = input.trim();
  if (text.startsWith('-')) {
    return { ok: false, error: `invalid duration ${JSON.stringify(input)}: must not be negative (${DURATION_HINT})` };
  }
  const m = DURATION_RE.exec(text);
  if (!m) return { ok: false, error: `invalid duration ${JSON.stringify(input)} (${DURATION_HINT})` };
  const value = Number(m[1]);
  const unit = UNIT_MS[m[2] as string] as number;
  return { ok: true, ms: Math.round(value * unit) };
}

/** Short display form that parseDuration reads back: 1500 → '1.5s', 90000 → '1m30s', 3600000 → '1h'. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${trimNumber(ms / 1000)}s`;
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}` || '0s';
}

function trimNumber(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

export function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return typeof v === 'undefined' ? 'nothing' : `${typeof v} ${String(v)}`;
}
