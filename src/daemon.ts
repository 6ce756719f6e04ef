// `bksup up`: one foreground daemon run, from config to the last flushed log line.
//
//   load + validate config ── errors? print them all, exit 2, start nothing
//   take .supervisor/daemon.lock ── held by a live daemon? say which pid, exit 1
//   stop leftovers of a previous run that died (state.json: pid + start time)
//   wire the bus: log files, ring, terminal, supervisor.log
//   start the units in dependency order, then the control API (cannot listen? stop them, exit 1);
//   watch the units' files and the config's own files (restart on change, reload the config on
//   edit or `bksup reload`)
//   … until SIGINT/SIGTERM/SIGHUP or POST /api/shutdown
//   stop dependents first, flush every log, remove control.json and the lock, exit 0

import type { Logger } from 'pino';
import { findConfigFile, loadConfig, type LoadOptions } from './config/load.ts';
import type { ResolvedConfig } from './config/types.ts';
import { logHistory } from './control/history.ts';
import { startControlServer, type ControlServer } from './control/server.ts';
import { SupervisorMetrics } from './metrics.ts';
import { acquireDaemonLock, type LockResult } from './daemon-lock.ts';
import { EventBus } from './events.ts';
import { stopLeftovers } from './leftovers.ts';
import { runPreflight } from './preflight-run.ts';
import { LogFiles } from './logs/files.ts';
import { readLogLinesFrom, type FilePosition } from './logs/read-file.ts';
import { LogRing } from './logs/ring.ts';
import { EarlyLog } from './logs/early-log.ts';
import { isDevNull, TerminalPrinter } from './logs/terminal.ts';
import { watchPauses } from './util/pause-watch.ts';
import { StateStore } from './state-store.ts';
import { Supervisor } from './supervisor.ts';
import { LiveUpdates } from './watch/live.ts';
import { liveTree } from './units/child.ts';
import { RUN_ID } from './units/marker.ts';
import { redactText } from './util/redact.ts';
import { daemonSecrets } from './util/secrets.ts';
import { runVerify } from './verify.ts';

export interface DaemonOptions {
  cwd: string;
  configPath?: string;
  units: string[];
  rerun: string[];
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream;
  color?: boolean;
  /** Called with the running supervisor (tests and `verify` use it). */
  onReady?: (sup: Supervisor, config: ResolvedConfig) => void;
  /** Install SIGINT/SIGTERM/SIGHUP handlers (off in tests that run several daemons). */
  handleSignals?: boolean;
}

type DaemonLock = Extract<LockResult, { ok: true }>;

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const loadOpts = { cwd: opts.cwd, ...(opts.configPath ? { configPath: opts.configPath } : {}) };
  const found = findConfigFile(loadOpts);
  if (found.ok && found.via === 'bklite') opts.err.write(`bksup: no supervisor.config.ts in ${opts.cwd} or above it: using bk-supervisor's BK-Lite config ${found.file}\n`);
  if (found.ok && found.via === 'parent') opts.err.write(`bksup: using ${found.file} (found above ${opts.cwd})\n`);
  const loaded = await loadConfig(loadOpts);
  if (!loaded.ok) {
    opts.err.write(`bksup: the config is not valid, nothing was started:\n${loaded.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 2;
  }
  const config = loaded.config;
  const unknown = opts.units.filter((u) => !(u in config.units));
  const badRerun = opts.rerun.filter((u) => config.units[u]?.kind !== 'task');
  if (unknown.length || badRerun.length) {
    const known = config.order.join(', ');
    for (const u of unknown) opts.err.write(`bksup: unknown unit "${u}" (known: ${known})\n`);
    for (const u of badRerun) opts.err.write(`bksup: --rerun ${u}: not a task unit (tasks: ${config.order.filter((n) => config.units[n]!.kind === 'task').join(', ') || 'none'})\n`);
    return 2;
  }

  const lock = acquireDaemonLock(config.stateDir);
  if (!lock.ok) {
    opts.err.write(`bksup: ${lock.reason}\n`);
    return 1;
  }

  // Everything the daemon itself prints or logs is masked with these (units mask their own).
  const secrets = daemonSecrets(config);
  const mask = (text: string): string => redactText(text, secrets);
  try {
    return await supervise(opts, { config, loadOpts, sources: loaded.sources ?? [] }, lock, secrets, mask);
  } catch (err) {
    // Whoever prints this (the CLI, Node's last-resort handler) must not print a secret.
    throw maskedError(err, mask);
  }
}

function maskedError(err: unknown, mask: (text: string) => string): Error {
  if (!(err instanceof Error)) return new Error(mask(String(err)));
  const out = new Error(mask(err.message));
  out.stack = mask(err.stack ?? err.message);
  return out;
}

/** What was loaded, and how: a reload loads the same way and watches the same files. */
interface Loaded {
  config: ResolvedConfig;
  loadOpts: LoadOptions;
  sources: readonly string[];
}

/** Before supervisor.log opens: where start-up says and logs what it finds. */
interface StartUp {
  opts: DaemonOptions;
  config: ResolvedConfig;
  early: EarlyLog;
  say: (line: string) => void;
}

/** One run's parts once the units are starting: what the last steps use and take apart. */
interface Run {
  opts: DaemonOptions;
  config: ResolvedConfig;
  lock: DaemonLock;
  mask: (text: string) => string;
  say: (line: string) => void;
  store: StateStore;
  files: LogFiles;
  /** The terminal printer, unless stdout is /dev/null. */
  terminal: TerminalPrinter | undefined;
  sup: Supervisor;
  live: LiveUpdates;
  metrics: SupervisorMetrics;
  logger: Logger;
  /** Removes the signal handlers (nothing to remove when they were not installed). */
  offSignals: () => void;
  onExit: () => void;
}

/** The start-up steps in the order the header draws (each comment says why a step comes where it does). */
async function supervise(opts: DaemonOptions, loaded: Loaded, lock: DaemonLock, secrets: string[], mask: (text: string) => string): Promise<number> {
  const config = await preflight(opts, loaded.config, mask);

  const store = new StateStore(config.stateDir);
  const bus = new EventBus();
  // supervisor.log opens once the units are starting (src/logs/early-log.ts): until then, `early`.
  const early = new EarlyLog(bus);
  // Through the terminal printer once it exists: then these lines stay in order with the units'.
  let print = (text: string): void => {
    opts.out.write(text);
  };
  const say = (line: string): void => print(`${line}\n`);
  const startUp: StartUp = { opts, config, early, say };
  await reportInherited(startUp, store, lock);

  // Every line of this run is stamped later than this; the files' older lines are earlier runs'.
  const runStart = Date.now();
  // Bound once the supervisor exists (the files are set up before it, to catch its first lines).
  let noteInUnitLog: (unit: string, line: string) => void = () => {};
  const { files, ring, terminal } = wireLogs(startUp, bus, (unit, line) => noteInUnitLog(unit, line));
  if (terminal !== undefined) print = (text) => terminal.write(text);

  const sup = new Supervisor({
    config,
    bus,
    store,
    rerun: opts.rerun,
    // Shared with the supervisor log and `mask`: a reload updates it in place.
    secrets,
    log: (level, msg, extra) => early[level](extra ?? {}, msg),
  });
  // A reload evaluates the config afresh (`bksup reload` by hand must not be answered from the memo).
  const live = new LiveUpdates(sup, { ...loaded.loadOpts, fresh: true }, loaded.sources, (level, msg, extra) => early[level](extra ?? {}, msg));
  noteInUnitLog = (unit, line) => sup.unit(unit)?.note(line);
  // Before any unit starts, so the counters cover the whole run.
  const metrics = new SupervisorMetrics({ handle: sup });

  // Before control.json exists: whoever sees it may signal us at once, and without a handler
  // SIGTERM would kill the daemon outright (control.json and the lock left behind). A signal that
  // arrives before the units start makes startAll a no-op and the run ends cleanly.
  const offSignals = handleSignals(opts, sup, say);

  // Whatever happens, the last lines reach the files.
  const onExit = (): void => {
    files.flushSync();
    terminal?.flushSync();
  };
  process.on('exit', onExit);

  // The units first: the control API (a listening socket, control.json written and synced) and
  // the metrics' first scrape are not on the path to the first unit starting.
  const started = sup.startAll(opts.units);
  if (!started.ok) opts.err.write(`bksup: ${started.error}\n`);
  const { attachSupervisorLog, createSupervisorLogger, logEvent } = await import('./logs/supervisor-log.ts');
  const logger = createSupervisorLogger(config.logs.dir, { fileMode: config.logs.fileMode, secrets });
  early.open(logger, logEvent, () => attachSupervisorLog(bus, logger));

  const run: Run = { opts, config, lock, mask, say, store, files, terminal, sup, live, metrics, logger, offSignals, onExit };
  let control: ControlServer;
  try {
    control = await startControl(run, ring, runStart);
  } catch (err) {
    return await stopWithoutControl(run, err);
  }
  return await serve(run, control);
}

/**
 * Problems are warnings here: the units they concern will fail with the same reason, and
 * everything else should still come up. Returns the config as preflight completed it.
 */
async function preflight(opts: DaemonOptions, loaded: ResolvedConfig, mask: (text: string) => string): Promise<ResolvedConfig> {
  const pre = await runPreflight(loaded, { write: true });
  for (const note of pre.notes) opts.out.write(`bksup: preflight: ${mask(note)}\n`);
  for (const p of pre.problems) opts.err.write(`bksup: preflight: ${p.unit ? `${p.unit}: ` : ''}${mask(p.message)}\n`);
  return pre.config;
}

/** What a previous run left behind: an unreadable state file, a stale lock, leftover processes. */
async function reportInherited({ opts, config, early, say }: StartUp, store: StateStore, lock: DaemonLock): Promise<void> {
  if (store.problem) {
    say(`bksup: ${store.problem}`);
    early.warn(store.problem);
  }
  store.onWriteError = (msg) => {
    opts.err.write(`bksup: ${msg}\n`);
    early.error(msg);
  };
  if (lock.tookOverFrom !== undefined) {
    const msg = `took over a stale lock of pid ${lock.tookOverFrom}, which no longer supervises this directory`;
    say(`bksup: ${msg}`);
    early.warn(msg);
  }
  // Leftovers get the stop timeout their unit has now (5 s for units no longer configured).
  const leftovers = await stopLeftovers(store, (unit) => config.units[unit]?.stop ?? { signal: 'SIGTERM', timeoutMs: 5000 });
  for (const l of leftovers) {
    const msg = `stopped a leftover ${l.unit} process tree (pid ${l.pid}) from a previous run that did not stop cleanly${l.killed ? ' (needed SIGKILL)' : ''}`;
    say(`bksup: ${msg}`);
    early.warn({ unit: l.unit, pid: l.pid }, msg);
  }
}

/** The bus's readers but supervisor.log: the log files, the ring, the terminal. */
function wireLogs({ opts, config, early, say }: StartUp, bus: EventBus, noteInUnitLog: (unit: string, line: string) => void): { files: LogFiles; ring: LogRing; terminal?: TerminalPrinter } {
  const files = new LogFiles({
    dir: config.logs.dir,
    maxSizeBytes: config.logs.maxSizeBytes,
    keep: config.logs.keep,
    fileMode: config.logs.fileMode,
    onError: (unit, err) => {
      const msg =
        err.code === 'EDROPPED'
          ? `logs/${unit}.log: ${err.message}; those lines are lost (the unit keeps running; the newest lines wait for the disk)`
          : `cannot write logs/${unit}.log: ${err.message} (the unit keeps running; lines are held in memory, up to a bound, until writing works again)`;
      opts.err.write(`bksup: ${msg}\n`);
      early.error({ unit }, msg);
    },
    onRecover: (unit, { lost, code, sinceMs }) => {
      const lostText = lost === 0 ? 'no line was lost' : `${lost} line(s) were lost`;
      const msg = `${unit}: writing logs/${unit}.log again; ${lostText} while it could not be written (${code} for ${((Date.now() - sinceMs) / 1000).toFixed(1)} s)`;
      say(`bksup: ${msg}`);
      early.warn({ unit, lost, code }, msg);
      // In the file itself, where a reader meets the hole.
      if (lost > 0) noteInUnitLog(unit, `[bksup] ${lost} line(s) of this log were lost: writing failed with ${code} for ${((Date.now() - sinceMs) / 1000).toFixed(1)} s`);
    },
  });
  files.attach(bus);
  const ring = new LogRing(config.logs.ringSize);
  ring.attach(bus);
  // Output sent to /dev/null (a service manager, `> /dev/null`) is not formatted at all: under a
  // noisy child that is a third of the daemon's CPU for nothing. The files get every line anyway.
  if (!(opts.out === process.stdout && isDevNull(1))) {
    const terminal = new TerminalPrinter(opts.out, { color: opts.color ?? Boolean(opts.out.isTTY && !process.env.NO_COLOR), unitNames: [...config.order] });
    terminal.attach(bus);
    return { files, ring, terminal };
  }
  return { files, ring };
}

/** The first signal shuts down cleanly, a second kills at once. Returns what removes the handlers. */
function handleSignals(opts: DaemonOptions, sup: Supervisor, say: (line: string) => void): () => void {
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      say(`bksup: ${sig}: stopping every unit, dependents first (${sig === 'SIGINT' ? 'Ctrl-C' : 'signal'} again to kill at once)`);
      void sup.shutdown(`supervisor received ${sig}`);
    } else {
      say('bksup: second signal: killing every process tree now');
      forceKill(sup);
    }
  };
  const handled: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  if (opts.handleSignals === false) return () => {};
  for (const s of handled) process.on(s, onSignal);
  return () => {
    for (const s of handled) process.off(s, onSignal);
  };
}

function startControl({ config, sup, files, live, logger, metrics }: Run, ring: LogRing, runStart: number): Promise<ControlServer> {
  return startControlServer({
    host: config.control.host,
    port: config.control.port,
    allowRemote: config.control.allowRemote,
    stateDir: config.stateDir,
    handle: sup,
    history: logHistory(ring, {
      readFrom: async (unit, fromSeq, limits, cursor) => {
        const r = await readLogLinesFrom(config.logs.dir, unit, fromSeq, { ...limits, runStart, at: cursor as FilePosition | undefined });
        return { lines: r.lines, cursor: r.next };
      },
      flush: () => files.flush(),
    }),
    // The units started before this server: a client of an earlier run resumes from seq 1.
    baseSeq: new Map(),
    logger,
    metrics,
    metricsPublic: config.metrics.public,
    reload: { run: (trigger) => live.reloader.reload(trigger), last: () => live.reloader.last },
  });
}

/** Nobody could reach or stop this daemon: stop what already started, and say why. */
async function stopWithoutControl(run: Run, err: unknown): Promise<number> {
  const why = err instanceof Error ? err.message : String(err);
  run.opts.err.write(`bksup: ${why}; stopping every unit (fix control.host/control.port in ${run.config.file})\n`);
  run.logger.error({ err: why }, 'control server failed: stopping every unit');
  await run.sup.shutdown(`control server failed: ${why}`);
  await run.store.settled();
  await release(run);
  return 1;
}

/** From the control API listening to the last unit stopped. */
async function serve(run: Run, control: ControlServer): Promise<number> {
  const { opts, config, sup, live, logger, say } = run;
  say(`bksup: supervising ${config.order.length} units from ${config.file}`);
  say(`bksup: control API on http://${control.host}:${control.port} (token in ${config.stateDir}/control.json); logs in ${config.logs.dir}`);
  // Only to the terminal (never to supervisor.log): a one-time link, useless once opened.
  say(`bksup: dashboard: ${control.loginUrl(15 * 60_000)} (one-time link, valid 15 min; npx bksup dashboard prints a new one)`);
  logger.info({ pid: process.pid, config: config.file, port: control.port }, 'supervisor started');

  const stopPauseWatch = watchPauses((ms) => {
    const msg = `the supervisor was paused for ${(ms / 1000).toFixed(1)} s (suspend, SIGSTOP or a stalled machine): probe deadlines that ran out during the pause were restarted, not counted as failures`;
    say(`bksup: ${msg}`);
    logger.warn({ pausedMs: ms }, msg);
  });

  runVerifyWhenHealthy(sup, config, say, run.mask);
  // After the units were asked to start: crawling the watched trees must not delay them.
  await live.start();
  const watched = config.order.filter((n) => config.units[n]!.enabled && config.units[n]!.watch);
  if (watched.length) say(`bksup: watching files for ${watched.join(', ')}`);
  if (config.reload) say('bksup: reloading the config when it (or an import, or an env file) changes; bksup reload does it by hand');
  opts.onReady?.(sup, config);

  // A bug in the daemon must not leave children behind or logs unwritten.
  const offFatal = handleFatal(run, control);

  // The daemon lives until someone asks for the shutdown (signal or control API).
  await sup.stopped;
  await live.close();
  stopPauseWatch();
  await run.store.settled();
  say('bksup: all units stopped');
  logger.info('supervisor stopped');
  await control.close();
  await release(run, offFatal);
  return 0;
}

/** Stops every unit on an uncaught error, then exits 70. Returns what removes the handlers. */
function handleFatal({ opts, mask, sup, files, logger, lock }: Run, control: ControlServer): () => void {
  const onFatal = (err: unknown): void => {
    const text = mask(err instanceof Error ? (err.stack ?? err.message) : String(err));
    opts.err.write(`bksup: internal error, stopping every unit: ${text}\n`);
    logger.fatal({ err: text }, 'internal error: stopping every unit');
    // What is pending goes to the files now, behind the write in flight: a synchronous write
    // here could interleave with that one, or (slow disk) block the daemon before the units
    // are stopped. The 'exit' handler's flushSync stays the last resort (30 s timer below).
    void files.flush();
    setTimeout(() => {
      forceKill(sup);
      process.exit(70);
    }, 30_000).unref();
    void sup
      .shutdown('supervisor internal error')
      // control.json must not outlive the daemon: clients would try a dead port.
      .finally(() => control.close())
      .catch(() => undefined)
      // The lines printed while the units stopped, and the writes still in flight: process.exit
      // would not wait for them.
      .then(() => files.flush())
      .finally(() => {
        logger.flush();
        lock.release();
        process.exit(70);
      });
  };
  if (opts.handleSignals === false) return () => {};
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  return () => {
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
  };
}

/** The last steps of either ending: every log on disk, the process handlers gone, the lock released. */
async function release(run: Run, offFatal: () => void = () => {}): Promise<void> {
  run.metrics.close();
  await run.files.flush();
  run.files.close();
  // In order behind everything printed before (a synchronous write could overtake one in flight).
  await run.terminal?.flush();
  run.logger.flush();
  run.offSignals();
  offFatal();
  process.off('exit', run.onExit);
  run.lock.release();
}

/**
 * Once every wanted unit is up (healthy, completed or skipped) for the first time, run the
 * config's smoke checks and publish the result on the events stream (the terminal prints it).
 */
function runVerifyWhenHealthy(sup: Supervisor, config: ResolvedConfig, say: (line: string) => void, mask: (text: string) => string): void {
  if (config.verify.length === 0) return;
  const UP = new Set(['healthy', 'completed', 'skipped', 'disabled']);
  let done = false;
  const check = (): void => {
    if (done || sup.shuttingDown) return;
    if (!sup.snapshot().every((u) => UP.has(u.state) || (u.optional === true && u.state === 'failed') || !sup.isWanted(u.name))) return;
    done = true;
    off();
    say('bksup: every unit is up; running verify');
    void runVerify(config.verify).then((report) => {
      sup.bus.publishEvent({ type: 'verify', ts: Date.now(), ok: report.ok, results: report.results.map((r) => ({ name: r.name, ok: r.ok, detail: mask(r.detail) })) });
    });
  };
  const off = sup.bus.onEvent((e) => {
    if (e.type === 'state') check();
  });
  // The units start before this is called (the control API comes in between): they may all be up already.
  check();
}

function forceKill(sup: Supervisor): void {
  // Every process group of a unit, and every process carrying this run's mark wherever it went.
  const pids = [...sup.snapshot().flatMap((s) => (s.pid ? [-s.pid] : [])), ...liveTree(undefined, (m) => m.startsWith(`${RUN_ID}:`))];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
