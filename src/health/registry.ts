// One place that knows every probe kind: which key of a healthcheck object names the probe,
// and which factory builds it. A healthcheck object holds exactly one probe key.

import type { ProbeSpec } from '../config/types.ts';
import { createDockerProbe } from './docker.ts';
import { createExecProbe } from './exec.ts';
import { createHttpProbe } from './http.ts';
import { createLogProbe } from './log.ts';
import { createNatsProbe } from './nats.ts';
import { createPostgresProbe } from './postgres.ts';
import { createRedisProbe } from './redis.ts';
import { createTcpProbe } from './tcp.ts';
import { runProbeOnce } from './monitor.ts';
import type { Probe, ProbeContext, ProbeResult } from './types.ts';

export const PROBE_KINDS = ['http', 'tcp', 'exec', 'log', 'postgres', 'nats', 'redis', 'docker'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

/** Which probe a spec is; throws (naming the keys found) unless exactly one probe key is set. */
export function probeKind(spec: ProbeSpec | Record<string, unknown>, where = 'healthcheck'): ProbeKind {
  const found = PROBE_KINDS.filter((k) => (spec as Record<string, unknown>)[k] !== undefined);
  if (found.length === 1 && found[0]) return found[0];
  if (found.length === 0) throw new Error(`${where}: no probe given; use one of ${PROBE_KINDS.join(', ')}`);
  throw new Error(`${where}: one probe per healthcheck object, found ${found.join(' and ')}`);
}

export function createProbe(spec: ProbeSpec, ctx: ProbeContext): Probe {
  const kind = probeKind(spec, `unit "${ctx.unit}": healthcheck`);
  // The casts are safe: probeKind just established which key is present.
  switch (kind) {
    case 'http':
      return createHttpProbe(spec as Extract<ProbeSpec, { http: string }>, ctx);
    case 'tcp':
      return createTcpProbe(spec as Extract<ProbeSpec, { tcp: string | number }>, ctx);
    case 'exec':
      return createExecProbe(spec as Extract<ProbeSpec, { exec: string | string[] }>, ctx);
    case 'log':
      return createLogProbe(spec as Extract<ProbeSpec, { log: string }>, ctx);
    case 'postgres':
      return createPostgresProbe(spec as Extract<ProbeSpec, { postgres: string }>, ctx);
    case 'nats':
      return createNatsProbe(spec as Extract<ProbeSpec, { nats: string }>, ctx);
    case 'redis':
      return createRedisProbe(spec as Extract<ProbeSpec, { redis: string }>, ctx);
    case 'docker':
      return createDockerProbe(spec as Extract<ProbeSpec, { docker: string | true }>, ctx);
  }
}

/**
 * Build, run once (bounded by timeoutMs), close: for a task's `once.skipIf` and `verify`.
 * A spec that cannot become a probe is a failed result naming why, not an exception.
 */
export async function probeOnce(spec: ProbeSpec, ctx: ProbeContext, timeoutMs: number): Promise<ProbeResult> {
  let probe: Probe;
  try {
    probe = createProbe(spec, { ...ctx, timeoutMs: ctx.timeoutMs ?? timeoutMs });
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  try {
    return await runProbeOnce(probe, timeoutMs);
  } finally {
    probe.close?.();
  }
}
