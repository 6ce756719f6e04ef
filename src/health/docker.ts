// docker: ready when the container's own HEALTHCHECK reports healthy, or — for a container
// without one — when it is running (and not restarting). Read with `docker inspect`, so it works
// for any container, compose-managed or not. `docker: true` means this compose unit's container.

import type { DockerProbe } from '../config/types.ts';
import { attempt, failure } from './abort.ts';
import type { Probe, ProbeContext, ProbeResult } from './types.ts';

/** The part of `docker inspect`'s `.State` this probe reads. */
export interface DockerState {
  Status?: string;
  Running?: boolean;
  Paused?: boolean;
  Restarting?: boolean;
  OOMKilled?: boolean;
  Dead?: boolean;
  ExitCode?: number;
  Error?: string;
  Health?: { Status?: string; FailingStreak?: number; Log?: { ExitCode?: number; Output?: string }[] } | null;
}

export function createDockerProbe(spec: DockerProbe, ctx: ProbeContext): Probe {
  if (spec.docker !== true && (typeof spec.docker !== 'string' || !spec.docker.trim())) {
    throw new Error(`unit "${ctx.unit}": healthcheck docker needs a container name/id, or true for this compose unit's container`);
  }
  const label = spec.docker === true ? `docker container of ${ctx.unit}` : `docker ${spec.docker}`;
  const env = Object.keys(ctx.env).length > 0 ? ctx.env : undefined;

  return {
    label,
    check: (signal) =>
      attempt(signal, label, async (finish, addCleanup) => {
        const container = spec.docker === true ? ctx.containerId?.() : spec.docker;
        if (!container) return finish(failure(label, 'container not known yet (not created?)'));
        // Imported on first use: a daemon without docker probes never pays its ~12 MiB.
        const { execa } = await import('execa');
        const sub = execa('docker', ['inspect', '--type', 'container', '--format', '{{json .State}}', container], {
          reject: false,
          stdin: 'ignore',
          ...(env ? { env } : {}),
        });
        addCleanup(() => void sub.kill('SIGKILL'));
        const res = await sub;
        if (res.failed) {
          if ((res as { code?: unknown }).code === 'ENOENT') return finish(failure(label, 'the docker CLI is not on PATH'));
          const err = lastLine(String(res.stderr)) || (res.exitCode === undefined ? res.shortMessage : `exit code ${res.exitCode}`);
          return finish(failure(label, `docker inspect ${container}: ${err}`));
        }
        let state: DockerState;
        try {
          state = JSON.parse(String(res.stdout)) as DockerState;
        } catch {
          return finish(failure(label, `docker inspect ${container}: unreadable output ${String(res.stdout).slice(0, 100)}`));
        }
        const verdict = judgeState(state);
        finish(verdict.ok ? verdict : failure(label, verdict.reason));
      }),
  };
}

/** The rule, separate from the CLI call so it is tested on real `docker inspect` outputs. */
export function judgeState(state: DockerState): ProbeResult {
  const status = state.Status ?? (state.Running ? 'running' : 'unknown');
  if (state.Restarting) return { ok: false, reason: `container is restarting (last exit code ${state.ExitCode ?? '?'})` };
  if (state.Paused) return { ok: false, reason: 'container is paused' };
  if (!state.Running) {
    const extra = [state.ExitCode !== undefined ? `exit code ${state.ExitCode}` : '', state.OOMKilled ? 'OOM-killed' : '', state.Error ?? '']
      .filter(Boolean)
      .join(', ');
    return { ok: false, reason: `container is ${status}${extra ? ` (${extra})` : ''}` };
  }
  const health = state.Health;
  if (!health || !health.Status) return { ok: true, detail: 'running (no healthcheck)' };
  if (health.Status === 'healthy') return { ok: true, detail: 'healthy' };
  const last = health.Log?.[health.Log.length - 1];
  const output = last?.Output ? lastLine(last.Output) : '';
  const streak = health.FailingStreak ? `, failing streak ${health.FailingStreak}` : '';
  return { ok: false, reason: `container health is ${health.Status}${streak}${output ? `: ${output}` : ''}` };
}

function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const line = lines[lines.length - 1] ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
