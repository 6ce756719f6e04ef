// Checking a /metrics answer with real parsers: promtool (Prometheus' own, from Debian's
// `prometheus` package) for validity and lint, parse-prometheus-text-format for the values.

import { spawnSync } from 'node:child_process';
import parsePrometheusTextFormat, { type PromFamily, type PromSample } from 'parse-prometheus-text-format';

export interface PromtoolResult {
  /** 0 valid and clean, 3 valid with lint problems, 1 not valid. */
  code: number | null;
  /** promtool's lines (parse errors or lint problems). */
  problems: string[];
}

export function promtoolCheck(text: string): PromtoolResult {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`promtool could not run (${r.error.message}): install Debian's prometheus package (.ci/run does)`);
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return { code: r.status, problems };
}

export function parseMetrics(text: string): PromFamily[] {
  return parsePrometheusTextFormat(text);
}

function labelsMatch(s: PromSample, labels: Record<string, string>): boolean {
  return Object.entries(labels).every(([k, v]) => s.labels?.[k] === v);
}

/** The samples of one family whose labels include `labels`. */
export function samples(families: PromFamily[], name: string, labels: Record<string, string> = {}): PromSample[] {
  const f = families.find((x) => x.name === name);
  return f ? f.metrics.filter((s) => labelsMatch(s, labels)) : [];
}

/** The value of the one sample of `name` with these labels; undefined when there is none. */
export function value(families: PromFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples(families, name, labels);
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]?.value === undefined ? undefined : Number(found[0].value);
}

export function familyType(families: PromFamily[], name: string): string | undefined {
  return families.find((x) => x.name === name)?.type;
}
