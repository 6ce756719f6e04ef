// Checks that need the whole config rather than one value: unit names, dependencies between
// units (unknown, self, condition vs kind, cycles), the control host, duplicate verify names.
// They read the raw config defensively, so they run (and report) even when the structural
// validation in schema.ts found problems elsewhere: all errors of a config come out at once.

import { findCycles } from '../graph.ts';
import type { ConfigIssue } from './errors.ts';
import { parseDuration } from './duration.ts';
import { CONDITIONS, isPlainObject, kindOf } from './schema.ts';
import type { DependencyCondition, UnitKind } from './types.ts';

export const UNIT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

// `supervisor` would share logs/supervisor.log with the daemon's own log.
const RESERVED_NAMES = new Set(['supervisor']);

export function unitNameProblem(name: string): string | undefined {
  if (!UNIT_NAME_RE.test(name) || name.includes('..')) {
    return `invalid unit name ${JSON.stringify(name)} (use letters, digits, '_', '.' and '-', starting with a letter or digit; no '/' or '..': names become file names and URL path segments)`;
  }
  if (RESERVED_NAMES.has(name.toLowerCase())) return `unit name ${JSON.stringify(name)} is reserved (logs/${name}.log is the daemon's own log; pick another name)`;
  return undefined;
}

/**
 * The array form of dependsOn waits for what the dependency is for: a task must have
 * completed (tasks are setup steps); a process or compose unit must be healthy (which, for a
 * unit without a healthcheck, the supervisor reaches as soon as it runs).
 */
export function defaultCondition(kind: UnitKind | undefined): DependencyCondition {
  return kind === 'task' ? 'completed' : 'healthy';
}

/** dependsOn as `{ name: condition }` with array entries expanded; invalid entries left out. */
export function dependencyEntries(rawUnit: unknown, rawUnits: Record<string, unknown>): [string, DependencyCondition][] {
  if (!isPlainObject(rawUnit)) return [];
  const deps = rawUnit.dependsOn;
  if (Array.isArray(deps)) {
    return deps.filter((d): d is string => typeof d === 'string').map((d) => [d, defaultCondition(kindOf(rawUnits[d]))]);
  }
  if (!isPlainObject(deps)) return [];
  return Object.entries(deps).filter((e): e is [string, DependencyCondition] => (CONDITIONS as readonly unknown[]).includes(e[1]));
}

function backoffProblem(unit: unknown): string | undefined {
  if (!isPlainObject(unit) || !isPlainObject(unit.restart) || !isPlainObject(unit.restart.backoff)) return undefined;
  const { initial, max } = unit.restart.backoff;
  if (initial === undefined || max === undefined) return undefined;
  const a = parseDuration(initial);
  const b = parseDuration(max);
  if (a.ok && b.ok && a.ms > b.ms) return `initial (${String(initial)}) is longer than max (${String(max)}) (make initial <= max)`;
  return undefined;
}

function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

export function crossIssues(raw: unknown): ConfigIssue[] {
  if (!isPlainObject(raw)) return [];
  const issues: ConfigIssue[] = [];

  const control = raw.control;
  if (isPlainObject(control) && typeof control.host === 'string' && control.host !== '' && !isLoopback(control.host) && control.allowRemote !== true) {
    issues.push({
      path: ['control', 'host'],
      message: `${JSON.stringify(control.host)} is not a loopback address (set control.allowRemote: true to expose the control API)`,
    });
  }

  if (Array.isArray(raw.verify)) {
    const seen = new Set<string>();
    raw.verify.forEach((check, i) => {
      if (!isPlainObject(check) || typeof check.name !== 'string') return;
      if (seen.has(check.name)) issues.push({ path: ['verify', i, 'name'], message: `duplicate check name ${JSON.stringify(check.name)} (names identify results; make them unique)` });
      seen.add(check.name);
    });
  }

  const units = raw.units;
  if (!isPlainObject(units)) return issues;
  const names = Object.keys(units);
  const graph: Record<string, { dependsOn: Record<string, string> }> = {};
  for (const name of names) {
    const problem = unitNameProblem(name);
    if (problem) issues.push({ path: ['units', name], message: problem });
    const backoff = backoffProblem(units[name]);
    if (backoff) issues.push({ path: ['units', name, 'restart', 'backoff'], message: backoff });
    const edges: Record<string, string> = {};
    for (const [dep, cond] of dependencyEntries(units[name], units)) {
      const at = ['units', name, 'dependsOn', dep];
      if (dep === name) {
        issues.push({ path: at, message: `unit "${name}" depends on itself (remove this dependency)` });
        continue;
      }
      if (!Object.hasOwn(units, dep)) {
        const known = names.filter((n) => n !== name).sort();
        issues.push({ path: at, message: `unknown unit ${JSON.stringify(dep)} (known: ${known.join(', ') || 'none'})` });
        continue;
      }
      const depKind = kindOf(units[dep]);
      if (cond === 'completed' && depKind !== undefined && depKind !== 'task') {
        issues.push({ path: at, message: `condition "completed" needs a task, but "${dep}" is a ${depKind} unit that keeps running (use 'healthy' or 'started')` });
      } else if (cond === 'healthy' && depKind === 'task') {
        issues.push({ path: at, message: `condition "healthy" on task "${dep}": tasks run to completion (use 'completed' or 'started')` });
      }
      edges[dep] = cond;
    }
    graph[name] = { dependsOn: edges };
  }
  for (const cycle of findCycles(graph)) {
    issues.push({ path: ['units'], message: `dependency cycle ${cycle.join(' -> ')} (remove one of these dependencies)` });
  }
  return issues;
}
