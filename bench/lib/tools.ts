// The three supervisors behind one interface: start a set of units in a scratch directory,
// tell which processes are the supervisor's own, where a unit's log file is, stop everything
// (timed), and end every process of the session by PID.
//
// Every measured supervisor runs under `tini -s` (a child subreaper), in its own process
// group: orphaned grandchildren are reaped at once by tini instead of by this machine's PID 1,
// which reaps only every ~2 s, so no tool is charged for that.
//
// Each unit is `/bin/sh <dir>/units/<name>.sh` for every tool (the same argv, no extra shell),
// and its environment carries BKBENCH_RUN=<id> so the workload's processes can be found and
// counted (survivors) and cleaned up by PID, without ever matching by name. The supervisor
// itself does not carry the marker.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import type { Peers } from './peers.ts';
import { descendants, isAlive, markedProcesses, nowMs, signalPids, sleep, waitFor } from './proc.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
// The launcher users run (npm run supervise, the package's bin): the same runtime settings.
export const BKSUP = join(ROOT, 'bin', 'bksup');

export type ToolName = 'bk-supervisor' | 'pm2' | 'supervisord';

export interface UnitSpec {
  name: string;
  /** Shell script body; written to units/<name>.sh and run as `/bin/sh units/<name>.sh`. */
  script: string;
  restart: 'aggressive' | 'never';
  stopTimeoutMs: number;
  /** bk-supervisor only: a TCP health probe on this port, and its dependencies (healthy). */
  tcpPort?: number;
  healthIntervalMs?: number;
  dependsOn?: string[];
  /** bk-supervisor only: `watch.paths` (globs relative to the session dir). */
  watch?: string[];
}

export interface Session {
  tool: ToolName;
  dir: string;
  marker: string;
  /** The supervisor's own processes: the one under tini and its descendants not carrying the marker. */
  ownPids(): number[];
  logFile(unit: string): string;
  /** Stops every unit (stop timeout applies); wall time in ms until the tool reports all stopped. */
  stopAll(): Promise<number>;
  /** Ends the supervisor and every process of the session (SIGTERM, then SIGKILL by PID), bounded. */
  close(): Promise<void>;
  /** bk-supervisor only: control API address and token. */
  control?: { port: number; token: string };
}

export interface StartOptions {
  dir: string;
  units: UnitSpec[];
  marker: string;
  /** The supervisor's stdout: this file instead of /dev/null (bk-supervisor then attaches its terminal printer). */
  stdoutFile?: string;
  /** bk-supervisor only: the config's `reload` (default: the product's default, on). */
  reload?: boolean;
}

export interface Tool {
  name: ToolName;
  version: string;
  /** The settings this tool runs with in every workload (for RESULTS.md). */
  settings: string;
  start(opts: StartOptions): Promise<Session>;
}

function writeScripts(dir: string, units: UnitSpec[]): Map<string, string> {
  const scripts = new Map<string, string>();
  mkdirSync(join(dir, 'units'), { recursive: true });
  for (const u of units) {
    const file = join(dir, 'units', `${u.name}.sh`);
    writeFileSync(file, u.script + '\n');
    scripts.set(u.name, file);
  }
  return scripts;
}

/** Closers of every session still running: the runner calls them on Ctrl-C and at its deadline. */
export const liveSessions = new Set<() => Promise<void>>();

/**
 * `tini -s -- argv…` in its own process group; stdout to /dev/null (or `stdoutFile`), stderr to a file in dir.
 * Returns the tini process and the one way to end the session (registered in liveSessions).
 */
function underTini(dir: string, argv: string[], env: NodeJS.ProcessEnv, marker: string, stdoutFile?: string): { tini: ChildProcess; close: () => Promise<void> } {
  const err = openSync(join(dir, 'supervisor.stderr'), 'a');
  const out = openSync(stdoutFile ?? '/dev/null', 'w');
  const tini = spawn('/usr/bin/tini', ['-s', '--', ...argv], { cwd: dir, env, detached: true, stdio: ['ignore', out, err] });
  closeSync(err);
  closeSync(out);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= endAll(tini, marker, 5000).finally(() => liveSessions.delete(close));
    return closing;
  };
  liveSessions.add(close);
  return { tini, close };
}

/**
 * Ends a session by PID: SIGTERM to tini (which passes it to the supervisor, which stops its
 * children its own way), then after `graceMs` SIGKILL to whatever is left of tini's tree and
 * every process carrying the session's marker.
 */
async function endAll(tini: ChildProcess, marker: string, graceMs: number): Promise<void> {
  const pid = tini.pid;
  if (pid === undefined) return;
  const targets = (): number[] => [...new Set([...(isAlive(pid) ? [pid] : []), ...descendants(pid).map((p) => p.pid), ...markedProcesses(marker)])];
  const exited = new Promise<void>((r) => (tini.exitCode !== null || tini.signalCode !== null ? r() : tini.once('exit', () => r())));
  signalPids([pid], 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && targets().length > 0) await sleep(20);
  for (let i = 0; i < 50 && targets().length > 0; i++) {
    signalPids(targets(), 'SIGKILL');
    await sleep(20);
  }
  await Promise.race([exited, sleep(2000)]);
}

function daemonEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.BKBENCH_RUN;
  delete env.NODE_OPTIONS; // the harness's own loader must not reach the measured daemons
  return env;
}

function ownPidsUnder(tini: ChildProcess, marker: string): number[] {
  const pid = tini.pid;
  if (pid === undefined) return [];
  const marked = new Set(markedProcesses(marker));
  return descendants(pid)
    .map((p) => p.pid)
    .filter((p) => !marked.has(p));
}

// ------------------------------------------------------------------ bk-supervisor

export function bksupTool(): Tool {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  let rev = '';
  try {
    rev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  return {
    name: 'bk-supervisor',
    version: `${pkg.version}${rev ? ` (${rev})` : ''}`,
    settings:
      '`bin/bksup up --no-color`, the launcher of `npm run supervise` (`--max-semi-space-size=1`, `MALLOC_MMAP_THRESHOLD_=65536` for the daemon only); stdout to /dev/null, so the terminal printer is not attached (as for any daemon whose output is discarded; files, ring and metrics get every line); restart `always`, backoff initial = max = 0 ms, factor 1, jitter 0, maxRestarts 1,000,000; logs.maxSize 1 GB (no rotation during a run); stop timeout as the workload says',
    async start(opts) {
      const scripts = writeScripts(opts.dir, opts.units);
      const units: Record<string, unknown> = {};
      for (const u of opts.units) {
        const unit: Record<string, unknown> = {
          command: ['/bin/sh', scripts.get(u.name)],
          env: { BKBENCH_RUN: opts.marker },
          restart:
            u.restart === 'aggressive'
              ? { policy: 'always', backoff: { initial: 0, max: 0, factor: 1, jitter: 0 }, maxRestarts: 1_000_000, window: '1h' }
              : { policy: 'never' },
          stop: { signal: 'SIGTERM', timeout: u.stopTimeoutMs },
        };
        if (u.tcpPort !== undefined) unit.healthcheck = { tcp: `127.0.0.1:${u.tcpPort}`, ...(u.healthIntervalMs !== undefined ? { interval: u.healthIntervalMs } : {}) };
        if (u.dependsOn) unit.dependsOn = Object.fromEntries(u.dependsOn.map((d) => [d, 'healthy']));
        if (u.watch) unit.watch = { paths: u.watch };
        units[u.name] = unit;
      }
      const config = { root: '.', logs: { dir: 'logs', maxSize: '1GB', keep: 1 }, control: { host: '127.0.0.1', port: 0 }, units, ...(opts.reload !== undefined ? { reload: opts.reload } : {}) };
      writeFileSync(join(opts.dir, 'supervisor.config.ts'), `export default ${JSON.stringify(config, null, 2)};\n`);
      const { tini, close } = underTini(opts.dir, [BKSUP, 'up', '--no-color'], daemonEnv({ NO_COLOR: '1' }), opts.marker, opts.stdoutFile);
      const exited = new Promise<void>((r) => tini.once('exit', () => r()));
      let gone = false;
      void exited.then(() => (gone = true));
      const controlPath = join(opts.dir, '.supervisor', 'control.json');
      const control = await waitFor(
        () => {
          if (gone) throw new Error(`bksup up exited early: ${readFileSync(join(opts.dir, 'supervisor.stderr'), 'utf8')}`);
          try {
            return JSON.parse(readFileSync(controlPath, 'utf8')) as { port: number; token: string; pid: number };
          } catch {
            return undefined;
          }
        },
        'bksup control.json',
        60_000,
        10,
      );
      return {
        tool: 'bk-supervisor',
        dir: opts.dir,
        marker: opts.marker,
        control: { port: control.port, token: control.token },
        ownPids: () => ownPidsUnder(tini, opts.marker),
        logFile: (unit) => join(opts.dir, 'logs', `${unit}.log`),
        async stopAll() {
          const t0 = nowMs();
          await post(control.port, '/api/shutdown', control.token);
          await Promise.race([exited, sleep(120_000)]);
          return nowMs() - t0;
        },
        close,
      };
    },
  };
}

function post(port: number, path: string, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end();
  });
}

// ------------------------------------------------------------------ PM2

export function pm2Tool(peers: Peers): Tool {
  const pm2Dir = peers.pm2Dir;
  return {
    name: 'pm2',
    version: peers.pm2Version,
    settings:
      'God daemon (`lib/Daemon.js`, what `pm2 start` spawns) run directly under tini; private PM2_HOME, PM2_DISABLE_VERSION_CHECK=true, $PM2_HOME/touch created first, PM2_NO_INTERACTION=true, PM2_CONCURRENT_ACTIONS=16 (default 2: `stop all` stopped two apps at a time, 6.6 s instead of 2.2 s), PM2_KILL_RETRY_TIME=10 (default 100 ms between liveness checks); per app: fork mode, `interpreter: none`, `vizion: false`, `pmx: false`, `automation: false`, `autorestart`, `restart_delay: 0`, `min_uptime: 0`, `max_restarts: 1e9`, `treekill: true`, `kill_timeout` = stop timeout, `merge_logs: true`, no `time`/`log_date_format` (lines are written without timestamps)',
    async start(opts) {
      const scripts = writeScripts(opts.dir, opts.units);
      const home = join(opts.dir, 'pm2-home');
      mkdirSync(home, { recursive: true });
      writeFileSync(join(home, 'touch'), String(Date.now()));
      const env = daemonEnv({ PM2_HOME: home, PM2_DISABLE_VERSION_CHECK: 'true', PM2_NO_INTERACTION: 'true', PM2_DISCRETE_MODE: 'true', SILENT: 'true', PM2_CONCURRENT_ACTIONS: '16', PM2_KILL_RETRY_TIME: '10' });
      const apps = opts.units.map((u) => ({
        name: u.name,
        script: '/bin/sh',
        args: [scripts.get(u.name)],
        interpreter: 'none',
        exec_mode: 'fork',
        cwd: opts.dir,
        vizion: false,
        pmx: false,
        automation: false,
        autorestart: u.restart === 'aggressive',
        restart_delay: 0,
        min_uptime: 0,
        max_restarts: 1_000_000_000,
        treekill: true,
        kill_timeout: u.stopTimeoutMs,
        merge_logs: true,
        out_file: join(opts.dir, 'logs', `${u.name}.log`),
        error_file: join(opts.dir, 'logs', `${u.name}.err.log`),
        env: { BKBENCH_RUN: opts.marker },
        watch: false,
      }));
      mkdirSync(join(opts.dir, 'logs'), { recursive: true });
      const eco = join(opts.dir, 'eco.config.js');
      writeFileSync(eco, `module.exports = ${JSON.stringify({ apps }, null, 2)};\n`);
      const { tini, close } = underTini(opts.dir, [process.execPath, join(pm2Dir, 'lib', 'Daemon.js')], env, opts.marker, opts.stdoutFile);
      await waitFor(() => existsSync(join(home, 'rpc.sock')) && existsSync(join(home, 'pub.sock')), 'PM2 daemon sockets', 30_000, 10);
      runNode([join(pm2Dir, 'bin', 'pm2'), 'start', eco], env, opts.dir);
      return {
        tool: 'pm2',
        dir: opts.dir,
        marker: opts.marker,
        ownPids: () => ownPidsUnder(tini, opts.marker),
        logFile: (unit) => join(opts.dir, 'logs', `${unit}.log`),
        async stopAll() {
          // Timed inside a helper that is already connected: the CLI's own start-up is not charged.
          const out = runNode([join(import.meta.dirname, 'pm2-stop.mjs'), pm2Dir], env, opts.dir);
          const r = JSON.parse(out.trim().split('\n').pop() as string) as { ms: number };
          return r.ms;
        },
        close,
      };
    },
  };
}

function runNode(args: string[], env: NodeJS.ProcessEnv, cwd: string): string {
  return execFileSync(process.execPath, args, { env, cwd, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

// ------------------------------------------------------------------ supervisord

export function supervisordTool(peers: Peers): Tool {
  return {
    name: 'supervisord',
    version: peers.supervisordVersion,
    settings:
      '`supervisord -n -c <tmp>/supervisord.conf` under tini, its own unix socket and pidfile in the temp dir, loglevel warn; per program: `startsecs=0`, `startretries=1000000`, `autorestart=true|false`, `stopasgroup=true`, `killasgroup=true` (without them grandchildren survive), `stopwaitsecs` = stop timeout, `stdout_logfile_maxbytes=0` (no rotation), `redirect_stderr=true`; stop through XML-RPC `supervisor.stopAllProcesses` over the socket (timed without supervisorctl start-up)',
    async start(opts) {
      const scripts = writeScripts(opts.dir, opts.units);
      mkdirSync(join(opts.dir, 'logs'), { recursive: true });
      const sock = join(opts.dir, 'supervisor.sock');
      let conf = `[unix_http_server]
file=${sock}
chmod=0700

[supervisord]
logfile=${join(opts.dir, 'supervisord.log')}
pidfile=${join(opts.dir, 'supervisord.pid')}
childlogdir=${join(opts.dir, 'logs')}
nodaemon=true
loglevel=warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://${sock}
`;
      for (const u of opts.units) {
        conf += `
[program:${u.name}]
command=/bin/sh ${scripts.get(u.name)}
directory=${opts.dir}
autostart=true
autorestart=${u.restart === 'aggressive' ? 'true' : 'false'}
startsecs=0
startretries=1000000
stopsignal=TERM
stopwaitsecs=${Math.max(1, Math.round(u.stopTimeoutMs / 1000))}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=${join(opts.dir, 'logs', `${u.name}.log`)}
stdout_logfile_maxbytes=0
stdout_logfile_backups=0
environment=BKBENCH_RUN="${opts.marker}"
`;
      }
      const confFile = join(opts.dir, 'supervisord.conf');
      writeFileSync(confFile, conf);
      const { tini, close } = underTini(opts.dir, [peers.supervisord, '-n', '-c', confFile], daemonEnv(), opts.marker, opts.stdoutFile);
      await waitFor(() => existsSync(sock), 'supervisord socket', 30_000, 10);
      return {
        tool: 'supervisord',
        dir: opts.dir,
        marker: opts.marker,
        ownPids: () => ownPidsUnder(tini, opts.marker),
        logFile: (unit) => join(opts.dir, 'logs', `${unit}.log`),
        async stopAll() {
          const t0 = nowMs();
          await xmlrpc(sock, 'supervisor.stopAllProcesses', 120_000);
          return nowMs() - t0;
        },
        close,
      };
    },
  };
}

/** One XML-RPC call without parameters over supervisord's unix socket; resolves with the body. */
function xmlrpc(socketPath: string, method: string, timeoutMs: number): Promise<string> {
  const body = `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params></params></methodCall>`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path: '/RPC2', method: 'POST', headers: { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => (text.includes('<fault>') ? reject(new Error(`${method}: ${text}`)) : resolve(text)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}
