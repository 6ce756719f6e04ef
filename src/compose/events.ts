// One long-lived `docker events` process per compose project, restarted when it dies.
//
// No event is lost across the gap between spawning the CLI and the daemon registering the
// subscription, or across a restart: every spawn passes `--since` (the watch start, then the
// time of the last event seen), so the daemon replays what happened meanwhile from its event
// log. Replayed events already delivered are recognised by their nanosecond timestamp and key.
//
//   start() ──► running ──(child exits)──► waiting (backoff) ──(timer)──► running …
//      any state ──close()──► closed

import type { ChildProcess } from 'node:child_process';
import { errorLine, spawnDetached, terminate } from './exec.ts';

export interface ContainerEvent {
  /** Full container id. */
  id: string;
  /** `create`, `start`, `die`, `stop`, `kill`, `destroy`, `health_status: healthy`, `exec_start: …`, … */
  action: string;
  /** Compose service label, when the container belongs to a compose project. */
  service: string | undefined;
  /** Container name. */
  name: string | undefined;
  /** On `die`: the exit code. */
  exitCode: number | undefined;
  /** On `kill`: the signal number or name docker reports. */
  signal: string | undefined;
  /** Event time, ms since epoch. */
  time: number;
  attributes: Readonly<Record<string, string>>;
}

export interface EventWatcherOptions {
  docker: string;
  env: Readonly<Record<string, string | undefined>>;
  /** `--filter` values (e.g. `label=com.docker.compose.project=x`); `type=container` is always added. */
  filters: readonly string[];
  onEvent: (ev: ContainerEvent) => void;
  /** The CLI died or failed to start; it is restarted after a backoff. */
  onError?: (reason: string) => void;
  now?: () => number;
  /** First restart delay (doubles up to maxRestartDelayMs, resets once events flow again). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

type State =
  | { kind: 'idle' }
  | { kind: 'running'; child: ChildProcess; startedAt: number }
  | { kind: 'waiting'; timer: NodeJS.Timeout }
  | { kind: 'closed' };

/** `1700000000123456789` (ns) → `'1700000000.123456789'`, the form `docker events --since` takes. */
export function nanosToSince(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  return `${s}.${frac.toString().padStart(9, '0')}`;
}

/** Parses one `docker events --format '{{json .}}'` line; undefined for anything else. */
export function parseEventLine(line: string): { event: ContainerEvent; nanos: bigint } | undefined {
  let raw: {
    id?: string;
    status?: string;
    Action?: string;
    time?: number;
    Actor?: { ID?: string; Attributes?: Record<string, string> };
  };
  try {
    raw = JSON.parse(line) as typeof raw;
  } catch {
    return undefined;
  }
  const id = raw.Actor?.ID ?? raw.id;
  const action = raw.Action ?? raw.status;
  if (typeof id !== 'string' || typeof action !== 'string') return undefined;
  // timeNano exceeds 2^53: JSON.parse loses digits, so read it from the text.
  const nanoText = /"timeNano"\s*:\s*(\d+)/.exec(line)?.[1];
  const nanos = nanoText !== undefined ? BigInt(nanoText) : BigInt(raw.time ?? 0) * 1_000_000_000n;
  const attributes = raw.Actor?.Attributes ?? {};
  const exit = attributes['exitCode'];
  return {
    nanos,
    event: {
      id,
      action,
      service: attributes['com.docker.compose.service'],
      name: attributes['name'],
      exitCode: exit !== undefined && /^-?\d+$/.test(exit) ? Number(exit) : undefined,
      signal: attributes['signal'],
      time: Number(nanos / 1_000_000n),
      attributes,
    },
  };
}

export class EventWatcher {
  readonly #opts: EventWatcherOptions;
  readonly #now: () => number;
  #state: State = { kind: 'idle' };
  /** Resume point: time of the last delivered event (or the watch start). */
  #sinceNanos = 0n;
  /** Keys of delivered events stamped exactly #sinceNanos (the replay after a restart repeats them). */
  #keysAtSince = new Set<string>();
  #delayMs: number;
  #partial = '';

  constructor(opts: EventWatcherOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#delayMs = opts.restartDelayMs ?? 250;
  }

  /** The pid of the live `docker events` process, if any. */
  get pid(): number | undefined {
    return this.#state.kind === 'running' ? this.#state.child.pid : undefined;
  }

  start(): void {
    if (this.#state.kind !== 'idle') return;
    this.#sinceNanos = BigInt(this.#now()) * 1_000_000n;
    this.#spawn();
  }

  async close(): Promise<void> {
    const st = this.#state;
    this.#state = { kind: 'closed' };
    switch (st.kind) {
      case 'running':
        await terminate(st.child);
        return;
      case 'waiting':
        clearTimeout(st.timer);
        return;
      case 'idle':
      case 'closed':
        return;
    }
  }

  #spawn(): void {
    const args = [this.#opts.docker, 'events', '--format', '{{json .}}', '--since', nanosToSince(this.#sinceNanos), '--filter', 'type=container'];
    for (const f of this.#opts.filters) args.push('--filter', f);
    let child: ChildProcess;
    try {
      child = spawnDetached(args, { env: this.#opts.env });
    } catch (err) {
      this.#scheduleRestart(`cannot start docker events: ${(err as Error).message}`);
      return;
    }
    this.#state = { kind: 'running', child, startedAt: this.#now() };
    this.#partial = '';
    let stderr = '';
    let spawnError: string | undefined;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.#onData(child, chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4096);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) spawnError = err.code === 'ENOENT' ? `${this.#opts.docker} not found on PATH` : err.message;
    });
    child.once('close', (code, signal) => {
      // A late 'close' from a child we already replaced or closed is not news.
      if (this.#state.kind !== 'running' || this.#state.child !== child) return;
      const why = spawnError ?? (errorLine(stderr) || (signal ? `killed by ${signal}` : `exit code ${code}`));
      this.#scheduleRestart(`docker events stopped: ${why}`);
    });
  }

  #scheduleRestart(reason: string): void {
    if (this.#state.kind === 'closed') return;
    // A process that ran for a while is not crash-looping: start again from the first delay.
    if (this.#state.kind === 'running' && this.#now() - this.#state.startedAt > 30_000) this.#delayMs = this.#opts.restartDelayMs ?? 250;
    this.#opts.onError?.(reason);
    const timer = setTimeout(() => {
      if (this.#state.kind !== 'waiting') return;
      this.#spawn();
    }, this.#delayMs);
    this.#delayMs = Math.min(this.#delayMs * 2, this.#opts.maxRestartDelayMs ?? 10_000);
    this.#state = { kind: 'waiting', timer };
  }

  #onData(child: ChildProcess, chunk: string): void {
    if (this.#state.kind !== 'running' || this.#state.child !== child) return;
    const text = this.#partial + chunk;
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      const parsed = parseEventLine(line);
      if (!parsed) continue;
      const { event, nanos } = parsed;
      const key = `${event.id}|${event.action}`;
      if (nanos < this.#sinceNanos) continue;
      if (nanos === this.#sinceNanos) {
        if (this.#keysAtSince.has(key)) continue;
        this.#keysAtSince.add(key);
      } else {
        this.#sinceNanos = nanos;
        this.#keysAtSince = new Set([key]);
      }
      this.#delayMs = this.#opts.restartDelayMs ?? 250;
      this.#opts.onEvent(event);
      // The listener may have closed us.
      if (this.#state.kind !== 'running') return;
    }
  }
}
