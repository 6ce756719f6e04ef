// What a reload changes: the difference between the running config and a new, valid one.
// Pure: the supervisor applies it (Supervisor.applyConfig), the daemon reports it.
//
// A unit is "changed" when anything that shapes its runs differs: command, env (with env files),
// cwd, healthcheck, restart and stop settings, kind-specific keys, its dependencies. `watch` and
// `description` apply without a restart. Settings the daemon reads once at start (logs, control,
// metrics, root, verify) cannot apply live: they are named, never silently ignored.

import { isDeepStrictEqual } from 'node:util';
import type { ResolvedConfig, ResolvedUnit } from './config/types.ts';

export interface ReloadPlan {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  /** Units whose only differences apply without a restart (`watch`, `description`). */
  updated: string[];
  /** Top-level settings that changed but take effect at the next `up`, e.g. `logs.dir`. */
  notLive: string[];
}

const LIVE_UNIT_KEYS = new Set(['watch', 'description', 'requires']);

function runShape(u: ResolvedUnit): Record<string, unknown> {
  return Object.fromEntries(Object.entries(u).filter(([k]) => !LIVE_UNIT_KEYS.has(k)));
}

function changedKeys(prefix: string, a: object, b: object): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !isDeepStrictEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])).map((k) => `${prefix}.${k}`);
}

export function planReload(prev: ResolvedConfig, next: ResolvedConfig): ReloadPlan {
  const plan: ReloadPlan = { added: [], removed: [], changed: [], unchanged: [], updated: [], notLive: [] };
  for (const name of prev.order) if (!(name in next.units)) plan.removed.push(name);
  for (const name of next.order) {
    const before = prev.units[name];
    const after = next.units[name]!;
    if (!before) plan.added.push(name);
    else if (!isDeepStrictEqual(runShape(before), runShape(after))) plan.changed.push(name);
    else if (!isDeepStrictEqual(before, after)) plan.updated.push(name);
    else plan.unchanged.push(name);
  }
  plan.notLive.push(...changedKeys('logs', prev.logs, next.logs), ...changedKeys('control', prev.control, next.control), ...changedKeys('metrics', prev.metrics, next.metrics));
  if (prev.root !== next.root) plan.notLive.push('root');
  if (!isDeepStrictEqual(prev.verify, next.verify)) plan.notLive.push('verify');
  return plan;
}

/** One line for the terminal, events and supervisor.log. */
export function describePlan(plan: ReloadPlan): string {
  const parts: string[] = [];
  if (plan.added.length) parts.push(`started ${plan.added.join(', ')}`);
  if (plan.removed.length) parts.push(`stopped ${plan.removed.join(', ')}`);
  if (plan.changed.length) parts.push(`restarted ${plan.changed.join(', ')}`);
  if (plan.updated.length) parts.push(`updated ${plan.updated.join(', ')} (watch settings)`);
  if (!parts.length) parts.push('no unit changed');
  let text = parts.join('; ');
  if (plan.notLive.length) text += `; not applied until the next up: ${plan.notLive.join(', ')} (they cannot change while the daemon runs)`;
  return text;
}
