// Sizes in the config are '10MB', '512KB', '1GB' (binary: KB = 1024) or a number of bytes.

import { describeType } from './duration.ts';

export type SizeResult = { ok: true; bytes: number } | { ok: false; error: string };

export const SIZE_HINT = "use e.g. '512KB', '10MB', '1GB' or a number of bytes";

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

const SIZE_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]+)?$/i;

export function parseSize(input: unknown): SizeResult {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return { ok: false, error: `invalid size ${String(input)}: must be a non-negative number (${SIZE_HINT})` };
    return { ok: true, bytes: Math.round(input) };
  }
  if (typeof input !== 'string') {
    return { ok: false, error: `invalid size: expected a string or a number, got ${describeType(input)} (${SIZE_HINT})` };
  }
  const m = SIZE_RE.exec(input.trim());
  const unit = m ? UNIT_BYTES[(m[2] ?? 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) return { ok: false, error: `invalid size ${JSON.stringify(input)} (${SIZE_HINT})` };
  return { ok: true, bytes: Math.round(Number(m[1]) * unit) };
}

export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (bytes >= factor) return `${Math.round((bytes / factor) * 10) / 10}${unit}`;
  }
  return `${bytes}B`;
}
