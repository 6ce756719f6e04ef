// The health module's public surface: build probes from specs, run them once or under a monitor.

export type { Probe, ProbeContext, ProbeResult } from './types.ts';
export { createProbe, probeKind, probeOnce, PROBE_KINDS, type ProbeKind } from './registry.ts';
export {
  HealthMonitor,
  runProbeOnce,
  realScheduler,
  ABANDON_GRACE_MS,
  type Scheduler,
  type TimerHandle,
  type HealthCallbacks,
  type HealthTimingMs,
  type HealthMonitorState,
} from './monitor.ts';
export { abortReason, ProbeTimeoutError } from './abort.ts';
export { formatMs } from './duration.ts';
export { isSubset, subsetMismatch } from './subset.ts';
