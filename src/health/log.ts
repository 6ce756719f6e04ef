// log: ready once the unit printed a line matching a regex (e.g. "Application startup complete").
// Latched: one match since the probe was created is enough, and from then on the probe stops
// looking at lines at all (the log path is hot). Supervisor-written `system` lines never count.

import type { LogProbe } from '../config/types.ts';
import type { Probe, ProbeContext, ProbeResult } from './types.ts';

export function createLogProbe(spec: LogProbe, ctx: ProbeContext): Probe {
  let re: RegExp;
  try {
    re = new RegExp(spec.log);
  } catch (err) {
    throw new Error(`unit "${ctx.unit}": healthcheck log /${spec.log}/ is not a valid regular expression: ${(err as Error).message}`);
  }
  const label = `log /${spec.log}/`;
  let matched: string | undefined;
  let unsubscribe: (() => void) | undefined;
  let closed = false;
  const stop = (): void => {
    closed = true;
    unsubscribe?.();
    unsubscribe = undefined;
  };
  unsubscribe = ctx.onLogs((batch) => {
    if (matched !== undefined || batch.unit !== ctx.unit || batch.stream === 'system') return;
    for (const line of batch.lines) {
      if (re.test(line)) {
        matched = line;
        stop();
        return;
      }
    }
  });
  // The subscription may have matched synchronously (a replaying bus) before `unsubscribe` was set.
  if (closed) stop();

  return {
    label,
    check(): Promise<ProbeResult> {
      if (matched !== undefined) return Promise.resolve({ ok: true, detail: `matched: ${matched.length > 200 ? `${matched.slice(0, 197)}...` : matched}` });
      return Promise.resolve({ ok: false, reason: `${label}: no output line matched yet` });
    },
    close: stop,
  };
}
