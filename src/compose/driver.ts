// The docker compose driver: everything a ComposeUnit needs from Docker, as values.
//
// - Only `up -d --no-deps <service>` and `stop -t N <service>`: never `down`, never removes
//   volumes (a dev database lives in them).
// - `up` never pulls (v2 gets `--pull never`; v1 has no such flag): `ensureImage` pulls a missing
//   image first with `compose pull <service>` (v1 and v2), its progress going to the unit's log,
//   so a pull is visible, bounded, and its failure names the image and the command. A service
//   with `build:` is built by compose, not pulled.
// - Containers are found by their compose labels (project + service), which v1 and v2 both set,
//   so the answer does not depend on the compose version or container naming.
// - Mutating compose commands of one project run one at a time: concurrent v1 `up`s of two
//   services race to create the project's network and one of them fails.
// - Every child process is tracked and killed by close(); output and reasons are redacted.

import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { redactText, secretValues } from '../util/redact.ts';
import { detectCompose, type ComposeCommand } from './detect.ts';
import { EventWatcher, type ContainerEvent } from './events.ts';
import { errorLine, formatArgv, runCommand, type RunResult } from './exec.ts';
import { isPullProgressNoise, serviceImages, type ServiceImage } from './images.ts';
import { followContainerLogs, type FollowLogsOptions, type LogFollower, type LogsEnd } from './logs.ts';

export { detectCompose, dockerReachable, probeCompose, type ComposeCommand, type DetectResult, type ReachableResult } from './detect.ts';
export type { ContainerEvent } from './events.ts';
export type { FollowLogsOptions, LogFollower, LogsEnd } from './logs.ts';

export const PROJECT_LABEL = 'com.docker.compose.project';
export const SERVICE_LABEL = 'com.docker.compose.service';

export type CommandResult = { ok: true; output: string } | { ok: false; reason: string; output: string };

export interface ContainerInfo {
  id: string;
  /** Without the leading `/`. */
  name: string;
  service: string | undefined;
  image: string;
  running: boolean;
  /** `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`. */
  status: string;
  exitCode: number;
  /** Docker healthcheck status, when the container has one. */
  health: 'starting' | 'healthy' | 'unhealthy' | undefined;
  /** RFC 3339; `0001-01-01T00:00:00Z` when never started. */
  startedAt: string;
  finishedAt: string;
  /** Restarts done by Docker's own restart policy (not `up` / `start`). */
  restartCount: number;
  /** Host pid of the container's main process; 0 when not running. */
  pid: number;
  oomKilled: boolean;
  mounts: { type: string; name: string | undefined; source: string; destination: string }[];
}

export type InspectResult = ({ ok: true } & ContainerInfo) | { ok: false; reason: string };
export type ContainerIdResult = { ok: true; id: string | undefined } | { ok: false; reason: string };

export interface ComposeProjectOptions {
  /** The compose file (absolute, or relative to cwd). */
  file: string;
  /** Compose project name: lowercase letters, digits, `-` and `_`, starting with a letter or digit. */
  project: string;
  cwd: string;
  /** Full environment for the compose and docker CLIs (default: process.env). Secret values are redacted from output. */
  env?: Readonly<Record<string, string>>;
  /** Which compose to run (default: detectCompose()). */
  compose?: ComposeCommand;
  /** The docker CLI (default `docker`). */
  docker?: string;
  /** Bound on `up` (default 5 min: compose may build an image). */
  upTimeoutMs?: number;
}

/** Why `name` is not a valid compose project name, or undefined when it is. */
export function projectNameProblem(name: string): string | undefined {
  // v2 rejects anything else; v1 silently strips other characters, which would break label lookups.
  if (/^[a-z0-9][a-z0-9_-]*$/.test(name)) return undefined;
  return `compose project name ${JSON.stringify(name)} is invalid: use lowercase letters, digits, '-' and '_', starting with a letter or digit`;
}

function fileMtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** A pull of a large image on a slow line takes minutes; bounded so a stalled one ends as a failure. */
const PULL_TIMEOUT_MS = 20 * 60_000;

/** Calls `onLine` for every complete line of the chunks pushed (progress output arrives in pieces). */
function lineSplitter(onLine: (line: string) => void): { push: (chunk: Buffer) => void; end: () => void } {
  let rest = '';
  return {
    push: (chunk) => {
      const parts = (rest + chunk.toString('utf8')).split(/\r?\n|\r/);
      rest = parts.pop() ?? '';
      for (const p of parts) onLine(p);
    },
    end: () => {
      if (rest) onLine(rest);
      rest = '';
    },
  };
}

const projectQueues = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier call with the same key has settled. */
function serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = projectQueues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  projectQueues.set(key, tail);
  void tail.then(() => {
    if (projectQueues.get(key) === tail) projectQueues.delete(key);
  });
  return next;
}

/** v2 gained `up --pull` in 2.3; the earlier v2 releases reject the flag. */
function supportsPullNever(c: ComposeCommand): boolean {
  const [major = 0, minor = 0] = c.version.split('.').map((n) => parseInt(n, 10));
  return major > 2 || (major === 2 && minor >= 3);
}

/** `--ansi never` exists in v2 and in v1 since 1.28. */
function supportsAnsiFlag(c: ComposeCommand): boolean {
  const [major = 0, minor = 0] = c.version.split('.').map((n) => parseInt(n, 10));
  return major >= 2 || (major === 1 && minor >= 28);
}

export class ComposeProject {
  readonly file: string;
  readonly project: string;
  readonly cwd: string;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #secrets: string[];
  readonly #docker: string;
  readonly #upTimeoutMs: number;
  #compose: ComposeCommand | undefined;
  readonly #abort = new AbortController();
  readonly #children = new Set<ChildProcess>();
  readonly #followers = new Set<LogFollower>();
  #watcher: EventWatcher | undefined;
  readonly #eventListeners = new Set<{ onEvent: (ev: ContainerEvent) => void; onError?: (reason: string) => void }>();
  #closed = false;
  /** `compose config` of the file as it was at `mtimeMs` (an edited file is read again). */
  #config: { mtimeMs: number; result: Promise<{ ok: true; services: Map<string, ServiceImage> } | { ok: false; reason: string }> } | undefined;

  constructor(opts: ComposeProjectOptions) {
    const problem = projectNameProblem(opts.project);
    // Config validation reports this to the user; reaching here with a bad name is a bug.
    if (problem) throw new TypeError(problem);
    this.file = opts.file;
    this.project = opts.project;
    this.cwd = opts.cwd;
    const env: Record<string, string | undefined> = { ...(opts.env ?? process.env) };
    // Hints and "What's next" blurbs of newer CLIs only add noise to the unit's log.
    env['DOCKER_CLI_HINTS'] ??= 'false';
    this.#env = env;
    this.#secrets = secretValues(opts.env ?? (process.env as Record<string, string>));
    this.#docker = opts.docker ?? 'docker';
    this.#upTimeoutMs = opts.upTimeoutMs ?? 300_000;
    this.#compose = opts.compose;
  }

  /** pids of the live child processes (each the leader of its own process group). */
  childPids(): number[] {
    const pids: number[] = [];
    for (const c of this.#children) if (c.pid !== undefined) pids.push(c.pid);
    for (const f of this.#followers) if (f.pid !== undefined) pids.push(f.pid);
    if (this.#watcher?.pid !== undefined) pids.push(this.#watcher.pid);
    return pids;
  }

  /** pid of this project's `docker events` process, while one runs. */
  get eventsPid(): number | undefined {
    return this.#watcher?.pid;
  }

  /** `up -d --no-deps <service>` (v2 also `--pull never`). Creates, recreates or starts the container. */
  up(service: string, opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
    return serialize(this.project, async () => {
      const compose = await this.#resolveCompose();
      if (!compose.ok) return { ok: false, reason: compose.reason, output: '' };
      const args = ['up', '-d', '--no-deps'];
      if (compose.major >= 2 && supportsPullNever(compose)) args.push('--pull', 'never');
      args.push(service);
      return this.#composeRun(compose, args, opts.timeoutMs ?? this.#upTimeoutMs);
    });
  }

  /**
   * Makes sure the service's image is in the local store before `up` (which never pulls): a
   * missing image is pulled with `compose pull <service>`, its progress passed to `onLine`.
   * A service with `build:` is left to compose. A failed pull names the image and the command.
   */
  async ensureImage(service: string, onLine: (line: string) => void): Promise<CommandResult> {
    const image = await this.imageOf(service);
    if (!image.ok) return { ok: false, reason: image.reason, output: '' };
    if (image.build || image.image === undefined) return { ok: true, output: '' };
    if (await this.imagePresent(image.image)) return { ok: true, output: '' };
    // One pull at a time per project, so each image's progress reads in one piece; a service
    // whose image is present never waits behind someone else's pull.
    return serialize(`${this.project}:pull`, () => this.#pull(service, image.image!, onLine));
  }

  async #pull(service: string, image: string, onLine: (line: string) => void): Promise<CommandResult> {
    // Two services of one image: the second finds it pulled by the first.
    if (await this.imagePresent(image)) return { ok: true, output: '' };
    const compose = await this.#resolveCompose();
    if (!compose.ok) return { ok: false, reason: compose.reason, output: '' };
    const command = formatArgv([...compose.argv, '-f', this.file, 'pull', service]);
    onLine(`image ${image} is not in the local store: pulling it (${command})`);
    const splitter = lineSplitter((line) => {
      if (!isPullProgressNoise(line)) onLine(this.#redact(line));
    });
    const r = await this.#composeRun(compose, ['pull', service], PULL_TIMEOUT_MS, splitter.push);
    splitter.end();
    if (r.ok && (await this.imagePresent(image))) {
      onLine(`pulled ${image}`);
      return r;
    }
    // v1 prints `Pulling x ... error` first and the daemon's answer (connection refused, not found) after it.
    const detail = r.output.split(/\r?\n/).map((l) => l.trim()).find((l) => !/^Pulling /.test(l) && /error|refused|not found|denied|unauthorized|timeout/i.test(l));
    const why = r.ok ? 'compose pull exited 0 but the image is still missing' : (detail ?? r.reason);
    return { ok: false, reason: `image ${image} is not in the local store and pulling it failed (${why}); when the registry is reachable, run: ${command}`, output: r.output };
  }

  /** The image `service` runs (from `compose config`, variables resolved), or that it is built. */
  async imageOf(service: string): Promise<({ ok: true } & ServiceImage) | { ok: false; reason: string }> {
    const mtimeMs = fileMtime(resolve(this.cwd, this.file));
    if (this.#config?.mtimeMs !== mtimeMs) {
      const result = (async () => {
        const compose = await this.#resolveCompose();
        if (!compose.ok) return { ok: false as const, reason: compose.reason };
        const r = await this.#composeRun(compose, ['config'], 60_000);
        return r.ok ? { ok: true as const, services: serviceImages(r.output) } : { ok: false as const, reason: r.reason };
      })();
      this.#config = { mtimeMs, result };
    }
    const entry = this.#config;
    const config = await entry.result;
    if (!config.ok) {
      if (this.#config === entry) this.#config = undefined;
      return config;
    }
    const found = config.services.get(service);
    if (!found) return { ok: false, reason: `service ${JSON.stringify(service)} is not in ${this.file} (services: ${[...config.services.keys()].join(', ')})` };
    return { ok: true, ...found };
  }

  /** Whether the local store has `image` (by name, tag included). */
  async imagePresent(image: string): Promise<boolean> {
    const r = await this.#dockerRun(['image', 'inspect', '--format', '{{.Id}}', image], 30_000);
    return r.ok;
  }

  /** `stop -t <timeoutSec> <service>`: SIGTERM (or the image's stop signal), SIGKILL after the timeout. Keeps the container and its volumes. */
  stop(service: string, timeoutSec: number): Promise<CommandResult> {
    return serialize(this.project, async () => {
      const compose = await this.#resolveCompose();
      if (!compose.ok) return { ok: false, reason: compose.reason, output: '' };
      const t = Math.max(0, Math.ceil(timeoutSec));
      return this.#composeRun(compose, ['stop', '-t', String(t), service], t * 1000 + 60_000);
    });
  }

  /** The service's container (running preferred, else the newest), found by compose labels; `id: undefined` when there is none. */
  async containerId(service: string): Promise<ContainerIdResult> {
    const r = await this.#dockerRun(
      [
        'ps', '--all', '--no-trunc',
        '--filter', `label=${PROJECT_LABEL}=${this.project}`,
        '--filter', `label=${SERVICE_LABEL}=${service}`,
        // `compose run` containers carry the same service label.
        '--filter', 'label=com.docker.compose.oneoff=False',
        '--format', '{{.ID}} {{.State}}',
      ],
      30_000,
    );
    if (!r.ok) return r;
    // `docker ps` lists newest first.
    const rows = r.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((cols): cols is [string, ...string[]] => cols[0] !== undefined && cols[0] !== '');
    const running = rows.find((cols) => cols[1] === 'running');
    return { ok: true, id: (running ?? rows[0])?.[0] };
  }

  async inspect(id: string): Promise<InspectResult> {
    const r = await this.#dockerRun(['inspect', '--type', 'container', '--format', '{{json .}}', id], 30_000);
    if (!r.ok) {
      if (/no such (container|object)/i.test(r.reason)) return { ok: false, reason: `container ${id} not found` };
      return r;
    }
    return parseInspect(r.stdout, id);
  }

  /**
   * Follows the container's output (`docker logs -f`), stdout and stderr apart. Ends by itself
   * when the container stops; a restarted container needs a new follower (pass `since` = its
   * start time to skip what was already read).
   */
  followLogs(
    id: string,
    opts: FollowLogsOptions,
    onChunk: (stream: 'stdout' | 'stderr', chunk: Buffer) => void,
    onEnd: (end: LogsEnd) => void = () => {},
  ): LogFollower {
    if (this.#closed) {
      const end: LogsEnd = { code: null, signal: null, closed: true, error: 'compose project closed' };
      queueMicrotask(() => onEnd(end));
      return { pid: undefined, done: Promise.resolve(end), close: () => Promise.resolve() };
    }
    const follower = followContainerLogs({ docker: this.#docker, env: this.#env, id, ...opts }, onChunk, (end) => {
      this.#followers.delete(follower);
      onEnd(end.error ? { ...end, error: this.#redact(end.error) } : end);
    });
    this.#followers.add(follower);
    return follower;
  }

  /**
   * Container events of this project (`docker events`, one process per project shared by all
   * watchers, restarted when it dies; `onError` hears about each death).
   */
  watchEvents(onEvent: (ev: ContainerEvent) => void, opts: { onError?: (reason: string) => void } = {}): { close(): Promise<void> } {
    const listener = { onEvent, onError: opts.onError };
    if (this.#closed) return { close: () => Promise.resolve() };
    this.#eventListeners.add(listener);
    if (!this.#watcher) {
      this.#watcher = new EventWatcher({
        docker: this.#docker,
        env: this.#env,
        filters: [`label=${PROJECT_LABEL}=${this.project}`],
        onEvent: (ev) => {
          for (const l of [...this.#eventListeners]) l.onEvent(ev);
        },
        onError: (reason) => {
          const text = this.#redact(reason);
          for (const l of [...this.#eventListeners]) l.onError?.(text);
        },
      });
      this.#watcher.start();
    }
    return {
      close: async () => {
        this.#eventListeners.delete(listener);
        if (this.#eventListeners.size === 0 && this.#watcher) {
          const w = this.#watcher;
          this.#watcher = undefined;
          await w.close();
        }
      },
    };
  }

  /** Kills every child process this project started (commands in flight, log followers, the events watcher). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    const waits: Promise<void>[] = [...this.#followers].map((f) => f.close());
    if (this.#watcher) waits.push(this.#watcher.close());
    this.#watcher = undefined;
    this.#eventListeners.clear();
    for (const c of this.#children) waits.push(new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('close', () => r()))));
    await Promise.all(waits);
  }

  async #resolveCompose(): Promise<({ ok: true } & ComposeCommand) | { ok: false; reason: string }> {
    if (this.#compose) return { ok: true, ...this.#compose };
    const d = await detectCompose({ env: this.#env, docker: this.#docker });
    if (d.ok) this.#compose = d;
    return d;
  }

  #redact(text: string): string {
    return redactText(text, this.#secrets);
  }

  #run(argv: readonly string[], timeoutMs: number, onOutput?: (chunk: Buffer) => void): Promise<RunResult> {
    return runCommand(argv, {
      cwd: this.cwd,
      env: this.#env,
      timeoutMs,
      signal: this.#abort.signal,
      ...(onOutput ? { onOutput } : {}),
      onSpawn: (child) => {
        this.#children.add(child);
        child.once('close', () => this.#children.delete(child));
      },
    });
  }

  async #composeRun(compose: ComposeCommand, args: string[], timeoutMs: number, onOutput?: (chunk: Buffer) => void): Promise<CommandResult> {
    if (this.#closed) return { ok: false, reason: 'compose project closed', output: '' };
    const global = ['-f', this.file, '-p', this.project];
    if (supportsAnsiFlag(compose)) global.push('--ansi', 'never');
    const argv = [...compose.argv, ...global, ...args];
    const r = await this.#run(argv, timeoutMs, onOutput);
    const output = this.#redact(r.output);
    if (r.code === 0) return { ok: true, output };
    return { ok: false, reason: this.#redact(failureReason(argv, r, timeoutMs)), output };
  }

  async #dockerRun(args: string[], timeoutMs: number): Promise<{ ok: true; stdout: string } | { ok: false; reason: string }> {
    if (this.#closed) return { ok: false, reason: 'compose project closed' };
    const argv = [this.#docker, ...args];
    const r = await this.#run(argv, timeoutMs);
    if (r.code === 0) return { ok: true, stdout: r.stdout };
    return { ok: false, reason: this.#redact(failureReason(argv, r, timeoutMs)) };
  }
}

function failureReason(argv: readonly string[], r: RunResult, timeoutMs: number): string {
  const cmd = `\`${formatArgv(argv)}\``;
  if (r.spawnError) return r.spawnError.code === 'ENOENT' ? `${argv[0]} not found on PATH` : `cannot run ${argv[0]}: ${r.spawnError.message}`;
  if (r.aborted) return `${cmd} cancelled: compose project closed`;
  if (r.timedOut) return `${cmd} timed out after ${Math.round(timeoutMs / 1000)} s`;
  const line = errorLine(r.stderr) || errorLine(r.stdout);
  const how = r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  return line ? `${cmd} failed (${how}): ${line}` : `${cmd} failed (${how})`;
}

interface RawInspect {
  Id?: string;
  Name?: string;
  RestartCount?: number;
  State?: {
    Status?: string;
    Running?: boolean;
    ExitCode?: number;
    Pid?: number;
    OOMKilled?: boolean;
    StartedAt?: string;
    FinishedAt?: string;
    Health?: { Status?: string };
  };
  Config?: { Image?: string; Labels?: Record<string, string> | null };
  Mounts?: { Type?: string; Name?: string; Source?: string; Destination?: string }[] | null;
}

export function parseInspect(text: string, id: string): InspectResult {
  let raw: RawInspect;
  try {
    raw = JSON.parse(text) as RawInspect;
  } catch {
    return { ok: false, reason: `docker inspect ${id}: unreadable output` };
  }
  const st = raw.State ?? {};
  const health = st.Health?.Status;
  return {
    ok: true,
    id: raw.Id ?? id,
    name: (raw.Name ?? '').replace(/^\//, ''),
    service: raw.Config?.Labels?.[SERVICE_LABEL],
    image: raw.Config?.Image ?? '',
    running: st.Running === true,
    status: st.Status ?? 'unknown',
    exitCode: st.ExitCode ?? 0,
    health: health === 'starting' || health === 'healthy' || health === 'unhealthy' ? health : undefined,
    startedAt: st.StartedAt ?? '',
    finishedAt: st.FinishedAt ?? '',
    restartCount: raw.RestartCount ?? 0,
    pid: st.Pid ?? 0,
    oomKilled: st.OOMKilled === true,
    mounts: (raw.Mounts ?? []).map((m) => ({ type: m.Type ?? '', name: m.Name || undefined, source: m.Source ?? '', destination: m.Destination ?? '' })),
  };
}

