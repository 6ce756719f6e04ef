// The supervisor's own log, `<logs dir>/supervisor.log`: pino JSON lines, one per state
// change, verify run and supervisor message. Writes are asynchronous and batched (minLength,
// plus a flush 250 ms after a line so a quiet log still reaches the file); pino's own exit
// hook (registered for every sync:false destination) writes what is left at exit.
//
// Secrets: known secret keys are censored by pino `redact`, and every string that reaches
// the file — messages, and string values inside logged objects — goes through redactText
// (DSN passwords, `password=…`, bearer tokens, and the literal secret values given).

import * as path from 'node:path';

import pino from 'pino';

import type { EventBus, SupervisorEvent } from '../events.ts';
import { redactText } from '../util/redact.ts';
import { ensureLogDir, logModes, openLogFile } from './mode.ts';

export interface SupervisorLoggerOptions {
  /** Default 'info'. */
  level?: pino.LevelWithSilent;
  /** Literal values to mask wherever they appear (e.g. secretValues(env), the control token). */
  secrets?: Iterable<string>;
  /** Bytes gathered before a write; default 4096. 0 writes every line at once. */
  minLength?: number;
  /** The file cannot be opened or written (the logger then drops lines; it never throws). */
  onError?: (err: Error) => void;
  /** Mode of supervisor.log (default 0o600, see mode.ts). */
  fileMode?: number;
}

/** Beyond this much unwritten JSON (disk gone), new lines are dropped rather than kept forever. */
const MAX_BUFFERED = 8 * 1024 * 1024;

const SECRET_KEYS = ['password', 'pass', 'passwd', 'token', 'secret', 'apiKey', 'api_key', 'authorization', 'cookie'];
const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
];

type Dest = pino.DestinationStream & { flush(): void; flushSync(): void; end(): void; on(ev: string, fn: (...a: unknown[]) => void): unknown };

interface Handle {
  /** undefined when the file could not be opened: the logger then writes nowhere. */
  dest: Dest | undefined;
  /** Armed only while lines wait in the buffer: an idle daemon has no timer here. */
  flushTimer: NodeJS.Timeout | undefined;
}

/** A burst of lines shares one write, and `tail -f supervisor.log` still sees them promptly. */
const FLUSH_DELAY_MS = 250;

function scheduleFlush(h: Handle): void {
  if (h.flushTimer !== undefined || h.dest === undefined) return;
  const dest = h.dest;
  h.flushTimer = setTimeout(() => {
    h.flushTimer = undefined;
    try {
      dest.flush();
    } catch {
      // Destroyed (closed) meanwhile: nothing left to flush.
    }
  }, FLUSH_DELAY_MS);
  h.flushTimer.unref();
}

const handles = new WeakMap<pino.Logger, Handle>();

export function supervisorLogPath(dir: string): string {
  return path.join(dir, 'supervisor.log');
}

/**
 * The file is opened synchronously, so lines logged just before an early exit are not lost
 * to a pending open, and an unusable log dir is known (onError) before this returns; the
 * logger then discards its lines instead of throwing.
 */
export function createSupervisorLogger(dir: string, opts: SupervisorLoggerOptions = {}): pino.Logger {
  // An array is used as it is, so its owner can update it (a config reload) while logging goes on.
  const secrets = Array.isArray(opts.secrets) ? (opts.secrets as string[]) : [...(opts.secrets ?? [])];
  const reportError = (err: unknown): void => {
    try {
      opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // The error sink failing must not turn a log problem into a crash.
    }
  };
  const handle: Handle = { dest: undefined, flushTimer: undefined };
  let fd: number | undefined;
  try {
    const modes = logModes(opts.fileMode);
    ensureLogDir(dir, modes);
    fd = openLogFile(supervisorLogPath(dir), modes).fd;
  } catch (err) {
    reportError(err);
  }
  let stream: pino.DestinationStream;
  if (fd === undefined) {
    stream = { write: () => {} };
  } else {
    const dest = pino.destination({ dest: fd, sync: false, minLength: opts.minLength ?? 4096, maxLength: MAX_BUFFERED }) as Dest;
    // A write error (ENOSPC) must not crash the daemon: SonicBoom emits 'error' on its stream.
    dest.on('error', reportError);
    handle.dest = dest;
    stream = dest;
  }
  const logger = pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '***' },
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => redactValue(obj, secrets, 0) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          const clean: unknown[] = args.map((a) => (typeof a === 'string' ? redactText(a, secrets) : a));
          // `logger.error(err)` takes its message from err.message, past the string redaction above.
          if (clean[0] instanceof Error && typeof clean[1] !== 'string') clean.splice(1, 0, redactText(clean[0].message, secrets));
          method.apply(this, clean as Parameters<typeof method>);
          scheduleFlush(handle);
        },
      },
    },
    stream,
  );
  handles.set(logger, handle);
  return logger;
}

/** Writes what the logger holds, synchronously (exit paths). */
export function flushSupervisorLogSync(logger: pino.Logger): void {
  const dest = handles.get(logger)?.dest;
  if (dest !== undefined) flushQuietly(dest);
}

/** Flushes and closes the file; the logger must not be used afterwards. */
export async function closeSupervisorLogger(logger: pino.Logger): Promise<void> {
  const h = handles.get(logger);
  if (h === undefined) return;
  handles.delete(logger);
  if (h.flushTimer !== undefined) clearTimeout(h.flushTimer);
  h.flushTimer = undefined;
  const dest = h.dest;
  if (dest === undefined) return;
  await new Promise<void>((resolve) => {
    dest.on('close', () => resolve());
    dest.on('error', () => resolve());
    dest.end(); // writes the buffer, then closes
  });
}

/** Logs every state change and verify run as one JSON line; returns the unsubscribe function. */
export function attachSupervisorLog(bus: EventBus, logger: pino.Logger): () => void {
  return bus.onEvent((event) => logEvent(logger, event));
}

export function logEvent(logger: pino.Logger, event: SupervisorEvent): void {
  if (event.type === 'state') {
    // `pid` of the line is the supervisor's own (pino base); the unit's is `unitPid`.
    const { type: _type, pid, ...rest } = event;
    const fields = pid === undefined ? rest : { ...rest, unitPid: pid };
    const bad = event.state === 'failed' || event.state === 'unhealthy';
    const msg = `${event.unit}: ${event.prev} → ${event.state}${event.reason ? ` (${event.reason})` : ''}`;
    if (bad) logger.warn({ event: 'state', ...fields }, msg);
    else logger.info({ event: 'state', ...fields }, msg);
  } else if (event.type === 'reload') {
    const fields = { event: 'reload', ok: event.ok, trigger: event.trigger, ts: event.ts, ...(event.errors ? { errors: event.errors } : {}) };
    if (event.ok) logger.info(fields, `config reloaded (${event.trigger}): ${event.summary ?? ''}`);
    else logger.warn(fields, `config reload refused (${event.trigger}): the config is not valid, nothing was changed: ${(event.errors ?? []).join('; ')}`);
  } else {
    const failed = event.results.filter((r) => !r.ok).map((r) => r.name);
    const msg = event.ok ? 'verify passed' : `verify failed: ${failed.join(', ')}`;
    const fields = { event: 'verify', ok: event.ok, results: event.results, ts: event.ts };
    if (event.ok) logger.info(fields, msg);
    else logger.warn(fields, msg);
  }
}

function flushQuietly(dest: Dest): void {
  try {
    dest.flushSync();
  } catch {
    // Not open yet (nothing could have been written) or the disk refuses: nothing to do at exit.
  }
}

/** Strings redacted, also inside objects, arrays and Errors (message, stack). */
function redactValue(value: unknown, secrets: string[], depth: number): unknown {
  if (typeof value === 'string') return redactText(value, secrets);
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (value instanceof Error) {
    // Still an Error, so pino's err serializer keeps its type and fields.
    const copy = new Error(redactText(value.message, secrets)) as NodeJS.ErrnoException;
    copy.name = value.name;
    copy.stack = value.stack === undefined ? undefined : redactText(value.stack, secrets);
    const code = (value as NodeJS.ErrnoException).code;
    if (code !== undefined) copy.code = code;
    return copy;
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, secrets, depth + 1);
  return out;
}
