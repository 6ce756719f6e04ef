// exec: ready when a command exits 0. The command runs in its own process group so a timeout
// kills everything it started (a `sh -c` wrapper and its children), not just the shell.

import { spawn } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import type { ExecProbe } from '../config/types.ts';
import { redactText, secretValues } from '../util/redact.ts';
import { attempt, failure } from './abort.ts';
import type { Probe, ProbeContext } from './types.ts';

/** Bytes of each output stream kept for the reason (the tail is what explains a failure). */
const TAIL_BYTES = 4096;
/** After exit, how long to wait for the pipes to close (a background grandchild may hold them). */
const PIPE_GRACE_MS = 200;

export function createExecProbe(spec: ExecProbe, ctx: ProbeContext): Probe {
  const argv = typeof spec.exec === 'string' ? ['/bin/sh', '-c', spec.exec] : [...spec.exec];
  const file = argv[0];
  if (!file || (typeof spec.exec === 'string' && !spec.exec.trim())) {
    throw new Error(`unit "${ctx.unit}": healthcheck exec needs a command (a string for /bin/sh -c, or an argv array)`);
  }
  const cwd = spec.cwd ? (isAbsolute(spec.cwd) ? spec.cwd : resolve(ctx.cwd, spec.cwd)) : ctx.cwd;
  const env = Object.keys(ctx.env).length > 0 ? ctx.env : process.env;
  const secrets = secretValues(ctx.env);
  const shown = typeof spec.exec === 'string' ? spec.exec : spec.exec.join(' ');
  const label = redactText(`exec ${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown}`, secrets);

  return {
    label,
    check: (signal) =>
      attempt(signal, label, (finish, addCleanup) => {
        const child = spawn(file, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout = (stdout + s).slice(-TAIL_BYTES)));
        child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-TAIL_BYTES)));
        addCleanup(() => {
          // Timeout: the whole group goes. After a normal exit this reaps what the command left
          // running in the background (a probe must not leave processes behind); the group id
          // cannot have been reused while any member is alive, and ESRCH is fine when none is.
          if (child.pid !== undefined) killGroup(child.pid);
          child.stdout.destroy();
          child.stderr.destroy();
        });
        child.once('error', (err: NodeJS.ErrnoException) => {
          const why = err.code === 'ENOENT' ? `cannot run "${file}": not found (cwd ${cwd}) [ENOENT]` : `cannot run "${file}": ${err.message}`;
          finish(failure(label, redactText(why, secrets)));
        });
        child.once('exit', (code, sig) => {
          const report = (): void => {
            if (code === 0) return finish({ ok: true, detail: 'exit 0' });
            const status = sig ? `killed by ${sig}` : `exit code ${code ?? '?'}`;
            const last = lastLine(stderr) || lastLine(stdout);
            finish(failure(label, redactText(last ? `${status}: ${last}` : status, secrets)));
          };
          // Output written just before exit can arrive after 'exit'; 'close' means it is all in.
          const grace = setTimeout(report, PIPE_GRACE_MS);
          child.once('close', () => {
            clearTimeout(grace);
            report();
          });
          addCleanup(() => clearTimeout(grace));
        });
      }),
  };
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone.
  }
}

function lastLine(text: string): string {
  const lines = text.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim();
    if (line) return line.length > 300 ? `${line.slice(0, 297)}...` : line;
  }
  return '';
}
