// Every config problem ends up as one line: `<file>: <key.path>: <problem> (<fix hint>)`.
// This file owns that format: key paths, "did you mean" suggestions, and turning zod issues
// (which speak in codes) into sentences a person can act on.

import { z } from 'zod';

export type KeyPath = readonly (string | number)[];

/** One problem found in a config; `message` is `<problem> (<fix hint>)`. */
export interface ConfigIssue {
  path: KeyPath;
  message: string;
}

/** `['units', 'server', 'dependsOn', 'nats']` → `units.server.dependsOn.nats`; odd names get quoted. */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_$-]+$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export function formatIssue(file: string, issue: ConfigIssue): string {
  const path = formatPath(issue.path);
  return path ? `${file}: ${path}: ${issue.message}` : `${file}: ${issue.message}`;
}

/** Optimal-string-alignment distance: a swapped pair of letters counts as one edit. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, ((d[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = v;
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** The candidate a typo most likely meant, or undefined when nothing is close enough. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const exactCase = candidates.find((c) => c.toLowerCase() === lower);
  if (exactCase !== undefined) return exactCase;
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(lower, c.toLowerCase());
    if (dist <= limit && dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}

/** `did you mean "x"? valid: a, b, c` — the hint for a value outside a fixed set. */
export function choiceHint(got: string, valid: readonly string[], noun = 'valid'): string {
  const guess = closest(got, valid);
  return `${guess !== undefined ? `did you mean "${guess}"? ` : ''}${noun}: ${valid.join(', ')}`;
}

export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const guess = closest(key, known);
  return guess !== undefined
    ? `unknown key "${key}" (did you mean "${guess}"?)`
    : `unknown key "${key}" (known keys here: ${known.join(', ')})`;
}

// zod reports unknown keys as one issue per object without saying which keys were allowed.
// Strict objects built with `strictObject` put the allowed keys into that issue's message
// behind this marker, so `fromZodIssues` can suggest the closest one for each unknown key.
const KNOWN_KEYS_MARKER = '\u0000known-keys:';

export function strictObject<T extends z.ZodRawShape>(shape: T): z.ZodObject<T, 'strict'> {
  const known = Object.keys(shape).join(',');
  return z
    .object(shape, {
      errorMap: (issue, ctx) => (issue.code === 'unrecognized_keys' ? { message: KNOWN_KEYS_MARKER + known } : { message: ctx.defaultError }),
    })
    .strict();
}

function zodDefaultMessage(issue: z.ZodIssue): string {
  return z.defaultErrorMap(issue as z.ZodIssueOptionalMessage, { data: undefined, defaultError: '' }).message;
}

function describeNumberBound(issue: z.ZodTooSmallIssue | z.ZodTooBigIssue): string {
  if (issue.code === 'too_small') return issue.inclusive ? `must be >= ${Number(issue.minimum)}` : `must be > ${Number(issue.minimum)}`;
  return issue.inclusive ? `must be <= ${Number(issue.maximum)}` : `must be < ${Number(issue.maximum)}`;
}

function oneFromZod(issue: z.ZodIssue): ConfigIssue[] {
  const path = issue.path;
  if (issue.code === 'unrecognized_keys') {
    const known = issue.message.startsWith(KNOWN_KEYS_MARKER) ? issue.message.slice(KNOWN_KEYS_MARKER.length).split(',').filter(Boolean) : [];
    return issue.keys.map((key) => ({ path: [...path, key], message: unknownKeyMessage(key, known) }));
  }
  // A message set in the schema (required_error, superRefine, ...) already reads well.
  if (issue.message !== zodDefaultMessage(issue)) return [{ path, message: issue.message }];
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.received === 'undefined') {
        const key = path[path.length - 1];
        return [{ path, message: `missing required key${key !== undefined ? ` "${String(key)}"` : ''}` }];
      }
      if (issue.expected === 'integer') return [{ path, message: 'expected an integer, got a fraction' }];
      return [{ path, message: `expected ${issue.expected}, got ${issue.received}` }];
    }
    case 'invalid_enum_value':
      return [{ path, message: `invalid value ${JSON.stringify(issue.received)} (${choiceHint(String(issue.received), issue.options.map(String))})` }];
    case 'invalid_literal':
      return [{ path, message: `invalid value ${JSON.stringify(issue.received)} (expected ${JSON.stringify(issue.expected)})` }];
    case 'too_small':
      if (issue.type === 'number') return [{ path, message: describeNumberBound(issue) }];
      if (issue.type === 'string' || issue.type === 'array') return [{ path, message: `must not be empty` }];
      return [{ path, message: issue.message }];
    case 'too_big':
      if (issue.type === 'number') return [{ path, message: describeNumberBound(issue) }];
      return [{ path, message: issue.message }];
    case 'not_finite':
      return [{ path, message: 'must be a finite number' }];
    default:
      return [{ path, message: issue.message }];
  }
}

export function fromZodIssues(issues: readonly z.ZodIssue[]): ConfigIssue[] {
  return issues.flatMap(oneFromZod);
}
