// Which Docker Compose is installed (v2 plugin `docker compose` or v1 `docker-compose`) and
// whether the Docker daemon answers. Both are preflight facts with user-facing reasons.

import { errorLine, formatArgv, runCommand } from './exec.ts';

type Env = Readonly<Record<string, string | undefined>>;

export interface ComposeCommand {
  /** The argv prefix: `['docker', 'compose']` or `['docker-compose']`. */
  argv: readonly string[];
  /** `'2.24.5'`, `'1.29.2'`. */
  version: string;
  major: number;
}

export type DetectResult = ({ ok: true } & ComposeCommand) | { ok: false; reason: string };
export type ReachableResult = { ok: true; serverVersion: string } | { ok: false; reason: string };

// v1 is a Python program that needs ~1 s just to start; the machine may be busy.
const PROBE_TIMEOUT_MS = 20_000;

/** Checks one candidate compose command. */
export async function probeCompose(argv: readonly string[], opts: { env?: Env } = {}): Promise<DetectResult> {
  const shortRun = await runCommand([...argv, 'version', '--short'], { env: opts.env, timeoutMs: PROBE_TIMEOUT_MS });
  let version = shortRun.code === 0 ? /^v?(\d+\.\d+\.\d+\S*)/.exec(shortRun.stdout.trim())?.[1] : undefined;
  if (version === undefined && !shortRun.spawnError && !shortRun.timedOut) {
    // Very old releases have no --short.
    const long = await runCommand([...argv, 'version'], { env: opts.env, timeoutMs: PROBE_TIMEOUT_MS });
    if (long.code === 0) version = /version:?\s+v?(\d+\.\d+\.\d+\S*?),?(?:\s|$)/i.exec(long.stdout)?.[1];
  }
  if (version !== undefined) return { ok: true, argv: [...argv], version, major: Number(version.split('.')[0]) };
  const why = shortRun.spawnError
    ? `${argv[0]} not found on PATH`
    : shortRun.timedOut
      ? `timed out after ${PROBE_TIMEOUT_MS / 1000} s`
      : errorLine(shortRun.output) || `exit code ${shortRun.code}`;
  return { ok: false, reason: `\`${formatArgv(argv)}\`: ${why}` };
}

let cached: Promise<DetectResult> | undefined;

/**
 * Finds Docker Compose: the v2 plugin (`docker compose`) first, then v1 (`docker-compose`).
 * The answer is cached for the life of the process; `refresh: true` probes again.
 */
export function detectCompose(opts: { refresh?: boolean; env?: Env; docker?: string } = {}): Promise<DetectResult> {
  if (cached && !opts.refresh) return cached;
  cached = (async (): Promise<DetectResult> => {
    const v2 = await probeCompose([opts.docker ?? 'docker', 'compose'], opts);
    if (v2.ok) return v2;
    const v1 = await probeCompose(['docker-compose'], opts);
    if (v1.ok) return v1;
    return {
      ok: false,
      reason:
        `Docker Compose not found (${v2.reason}; ${v1.reason}). ` +
        'Install the compose v2 plugin (docker-compose-plugin) or v1 (Debian: apt-get install docker-compose).',
    };
  })();
  return cached;
}

/**
 * Asks the daemon for its version with a short timeout. The reason names what to do, e.g.
 * `Docker is not running: Cannot connect to the Docker daemon at unix:///var/run/docker.sock`.
 */
export async function dockerReachable(opts: { env?: Env; docker?: string; timeoutMs?: number } = {}): Promise<ReachableResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const docker = opts.docker ?? 'docker';
  // `version` rather than `info`: with the daemon down, `info --format` of the 20.10 CLI
  // reports a template error instead of the connection error.
  const r = await runCommand([docker, 'version', '--format', '{{.Server.Version}}'], { env: opts.env, timeoutMs });
  if (r.spawnError) {
    return { ok: false, reason: `Docker CLI \`${docker}\` not found on PATH (Debian: apt-get install docker.io)` };
  }
  if (r.timedOut) return { ok: false, reason: `Docker is not responding: \`${docker} version\` took longer than ${timeoutMs / 1000} s` };
  const serverVersion = r.stdout.trim();
  if (r.code === 0 && serverVersion !== '') return { ok: true, serverVersion };
  const text = r.stderr || r.stdout;
  const connect = /Cannot connect to the Docker daemon at (\S+?)\.?(?:\s|$)/.exec(text);
  if (connect) return { ok: false, reason: `Docker is not running: Cannot connect to the Docker daemon at ${connect[1]}` };
  if (/permission denied/i.test(text)) {
    return { ok: false, reason: `Docker is not accessible: ${errorLine(text)} (run as root or add the user to the docker group)` };
  }
  return { ok: false, reason: `Docker is not reachable: ${errorLine(text) || `\`${docker} version\` exit code ${r.code}`}` };
}
