// Real servers for tests: nats-server, redis-server and PostgreSQL 15, each on a free loopback
// port in its own temp dir, ready when a real client gets an answer (never a sleep).
//
//   const nats = await startNats({ jetstream: true });   // nats.url = 'nats://127.0.0.1:PORT'
//   const redis = await startRedis({ password: 'pw' });  // redis.url = 'redis://:pw@127.0.0.1:PORT'
//   const pg = await startPostgres({ password: 'pw' });  // pg.url = 'postgres://postgres:pw@127.0.0.1:PORT/postgres'
//   await pg.query('create role app login password $$x$$');  // superuser over the unix socket
//   ...
//   await Promise.all([nats.stop(), redis.stop(), pg.stop()]);
//
// Every start* accepts `port` (to bring a server up where a probe is already looking, e.g.
// "fails while down, passes once up"); without it a free port is picked, and a lost race for it
// (EADDRINUSE) is retried on another. stop() signals ONLY that server's pid, waits until
// /proc says it is gone, then removes its temp dir; it is idempotent. Servers still running when
// the test process exits are SIGKILLed (their process group) by an exit hook, as a safety net.
//
// PostgreSQL: the machine's tools refuse to run as root, so as root they run as the `postgres`
// user (spawn uid/gid; everything they touch is chowned to it). initdb runs once per machine
// into a template dir (`$TMPDIR/bksup-test-pg15-template-<uid>`, built in a temp dir and renamed
// into place atomically, so concurrent test workers never see half of one) and each server gets a
// `cp -a` copy: start-up is ~0.3 s instead of ~2 s. Durability is off (fsync, synchronous_commit,
// full_page_writes). TCP logins need the password when one is given (scram-sha-256), otherwise
// trust; the unix socket in the temp dir is always trust, which is how `query()` administers it.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { isAlive } from '../../src/util/proc.ts';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

const execFileP = promisify(execFile);

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const OUTPUT_TAIL_CHARS = 8192;

export interface ServerHandle {
  host: '127.0.0.1';
  port: number;
  pid: number;
  /** The server's temp dir (data, sockets, logs); removed by stop(). */
  dir: string;
  /** The last few KB the server printed (for failure messages). */
  output(): string;
  /** Signals this pid only, waits until it is gone, removes `dir`. Idempotent. */
  stop(): Promise<void>;
  /**
   * A crash from outside: SIGKILL to the server's process group (its workers too), waits until
   * it is gone, keeps `dir` and the data. `pid` is then the dead one until revive().
   */
  crash(): Promise<void>;
  /** Starts the server again on the same port over the same data, ready when a client is answered. */
  revive(): Promise<void>;
}

export interface NatsServer extends ServerHandle {
  /** nats://127.0.0.1:PORT (credentials, if any, are NOT in it: see user/pass). */
  url: string;
  storeDir: string | undefined;
}

export interface RedisServer extends ServerHandle {
  /** redis://[:password@]127.0.0.1:PORT */
  url: string;
  password: string | undefined;
}

export interface PostgresServer extends ServerHandle {
  /** postgres://postgres[:password]@127.0.0.1:PORT/postgres */
  url: string;
  user: 'postgres';
  password: string | undefined;
  dataDir: string;
  socketDir: string;
  /** A TCP URL for another role/database on this server. */
  urlFor(opts: { user?: string; password?: string; database?: string }): string;
  /** Runs SQL as the superuser over the unix socket; returns the rows. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
}

// ---------------------------------------------------------------- process plumbing

interface Spawned {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<void>;
  hasExited(): boolean;
}

const running = new Map<number, ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of running.keys()) {
      try {
        process.kill(-pid, 'SIGKILL'); // detached: the server leads its own group (postgres backends too)
      } catch {
        // already gone
      }
    }
  });
}

function spawnServer(cmd: string, args: string[], opts: { cwd: string; uid?: number; gid?: number }): Spawned {
  installExitHook();
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
  });
  let out = '';
  let exited = false;
  const append = (b: Buffer): void => {
    out = (out + b.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      if (child.pid !== undefined) running.delete(child.pid);
      resolve();
    });
    child.once('error', (err) => {
      exited = true;
      out += `\nspawn error: ${err.message}`;
      resolve();
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${cmd}: spawn failed`);
  running.set(pid, child);
  return { child, pid, output: () => out, exited: exitedP, hasExited: () => exited };
}

/** Waits until `ready()` is true, failing at once (with the server's output) if it exits. */
async function waitReady(name: string, s: Spawned, ready: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let why = '';
  for (;;) {
    if (s.hasExited()) {
      why = `${name} exited during start-up`;
      break;
    }
    if (await ready()) return;
    if (Date.now() > deadline) {
      why = `${name} (pid ${s.pid}) did not accept connections within ${READY_TIMEOUT_MS} ms`;
      break;
    }
    // Not a synchronisation sleep: the poll interval of a readiness probe with a deadline.
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!s.hasExited()) await stopSpawned(s, 'SIGKILL');
  throw new ServerStartError(`${why}; its output:\n${s.output()}`, s.output());
}

class ServerStartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

/** Signal only this pid; SIGKILL it after STOP_TIMEOUT_MS; resolve once /proc says it is gone. */
async function stopSpawned(s: Spawned, signal: NodeJS.Signals): Promise<void> {
  if (!s.hasExited()) {
    try {
      process.kill(s.pid, signal);
    } catch {
      // already gone
    }
    const killer = setTimeout(() => {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, STOP_TIMEOUT_MS);
    await s.exited;
    clearTimeout(killer);
  }
  await waitGone(s.pid);
  s.child.stdout?.destroy();
  s.child.stderr?.destroy();
}

/** Resolves once /proc/PID/stat is absent or a zombie (a zombie still answers kill(pid, 0)). */
export async function waitGone(pid: number, timeout = STOP_TIMEOUT_MS): Promise<void> {
  await waitFor(() => !isAlive(pid), { timeout, interval: 20, message: `pid ${pid} to be gone` });
}

/** Starts on opts.port, or on free ports until one is not lost to a concurrent binder. */
async function onFreePort<T>(requested: number | undefined, start: (port: number) => Promise<T>): Promise<T> {
  if (requested !== undefined) return start(requested);
  let last: unknown;
  for (let i = 0; i < 4; i++) {
    try {
      return await start(await freePort());
    } catch (err) {
      last = err;
      if (!(err instanceof ServerStartError) || !/address already in use|EADDRINUSE/i.test(err.output)) throw err;
    }
  }
  throw last;
}

/**
 * The mutable part of a handle: the running process, replaced by revive(). `launch` spawns the
 * server over its existing dir and waits until it is ready.
 */
interface Lifecycle {
  readonly pid: number;
  output(): string;
  stop(signal: NodeJS.Signals): Promise<void>;
  crash(): Promise<void>;
  revive(): Promise<void>;
}

async function lifecycle(launch: () => Promise<Spawned>): Promise<Lifecycle> {
  let current = await launch();
  let crashed = false;
  return {
    get pid() {
      return current.pid;
    },
    output: () => current.output(),
    stop: async (signal) => {
      if (!crashed) await stopSpawned(current, signal);
    },
    crash: async () => {
      try {
        process.kill(-current.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await current.exited;
      await waitGone(current.pid);
      crashed = true;
    },
    revive: async () => {
      if (!crashed) throw new Error(`revive(): pid ${current.pid} was not crashed`);
      current = await launch();
      crashed = false;
    },
  };
}

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Resolves true once a TCP connection to the port succeeds (and, if `greeting`, the server's first bytes match it). */
function tcpAnswers(port: number, greeting?: RegExp): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      if (!greeting) done(true);
    });
    if (greeting) socket.once('data', (b) => done(greeting.test(b.toString('utf8'))));
  });
}

// ---------------------------------------------------------------- nats-server

export interface StartNatsOptions {
  port?: number;
  /** Enable JetStream (-js). Its store goes to `storeDir`, default a dir inside the temp dir. */
  jetstream?: boolean;
  storeDir?: string;
  /** Require these credentials (--user/--pass). */
  user?: string;
  pass?: string;
  /** Extra nats-server arguments. */
  args?: string[];
}

export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServer> {
  return onFreePort(opts.port, async (port) => {
    const dir = tempDir('bksup-nats-');
    const storeDir = opts.jetstream ? (opts.storeDir ?? join(dir, 'js')) : undefined;
    const args = ['-a', '127.0.0.1', '-p', String(port)];
    if (storeDir) args.push('-js', '-sd', storeDir);
    if (opts.user !== undefined) args.push('--user', opts.user);
    if (opts.pass !== undefined) args.push('--pass', opts.pass);
    args.push(...(opts.args ?? []));
    const launch = async (): Promise<Spawned> => {
      const s = spawnServer('nats-server', args, { cwd: dir });
      // "Server is ready" is printed after JetStream is up and the client port listens.
      await waitReady('nats-server', s, async () => /Server is ready/.test(s.output()) && (await tcpAnswers(port, /^INFO /)));
      return s;
    };
    let life: Lifecycle;
    try {
      life = await lifecycle(launch);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return {
      host: '127.0.0.1',
      port,
      get pid() {
        return life.pid;
      },
      dir,
      url: `nats://127.0.0.1:${port}`,
      storeDir,
      output: () => life.output(),
      crash: () => life.crash(),
      revive: () => life.revive(),
      stop: once(async () => {
        await life.stop('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
      }),
    };
  });
}

// ---------------------------------------------------------------- redis-server

export interface StartRedisOptions {
  port?: number;
  /** requirepass */
  password?: string;
  args?: string[];
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  return onFreePort(opts.port, async (port) => {
    const dir = tempDir('bksup-redis-');
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no', '--logfile', ''];
    if (opts.password !== undefined) args.push('--requirepass', opts.password);
    args.push(...(opts.args ?? []));
    const launch = async (): Promise<Spawned> => {
      const s = spawnServer('redis-server', args, { cwd: dir });
      await waitReady('redis-server', s, async () => /Ready to accept connections/.test(s.output()) && (await tcpAnswers(port)));
      return s;
    };
    let life: Lifecycle;
    try {
      life = await lifecycle(launch);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const auth = opts.password !== undefined ? `:${encodeURIComponent(opts.password)}@` : '';
    return {
      host: '127.0.0.1',
      port,
      get pid() {
        return life.pid;
      },
      dir,
      url: `redis://${auth}127.0.0.1:${port}`,
      password: opts.password,
      output: () => life.output(),
      crash: () => life.crash(),
      revive: () => life.revive(),
      stop: once(async () => {
        await life.stop('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
      }),
    };
  });
}

// ---------------------------------------------------------------- PostgreSQL 15

export interface StartPostgresOptions {
  port?: number;
  /** Password of the `postgres` superuser over TCP (scram-sha-256); none = TCP trust. */
  password?: string;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

/** As root, the postgres tools must run as an unprivileged user; the `postgres` user exists here. */
function pgRunAs(): RunAs {
  if (process.getuid?.() !== 0) return {};
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const parts = line?.split(':');
  if (!parts || parts.length < 4) throw new Error('running as root but there is no `postgres` user to run PostgreSQL as');
  return { uid: Number(parts[2]), gid: Number(parts[3]) };
}

function chownTo(path: string, who: RunAs): void {
  if (who.uid !== undefined && who.gid !== undefined) chownSync(path, who.uid, who.gid);
}

let templatePromise: Promise<string> | undefined;

/** One initdb per machine (per uid), reused by every server through a copy. */
function pgTemplate(who: RunAs): Promise<string> {
  templatePromise ??= (async () => {
    const final = join(tmpdir(), `bksup-test-pg15-template-${process.getuid?.() ?? 'x'}`);
    if (existsSync(join(final, 'PG_VERSION'))) return final;
    const work = tempDir('bksup-pg-initdb-');
    chownTo(work, who);
    const data = join(work, 'data');
    const s = spawnServer(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], {
      cwd: work,
      ...who,
    });
    await s.exited;
    if (s.child.exitCode !== 0) {
      rmSync(work, { recursive: true, force: true });
      throw new Error(`initdb failed (exit ${s.child.exitCode}):\n${s.output()}`);
    }
    try {
      renameSync(data, final); // atomic: a concurrent worker either wins or finds ours complete
    } catch (err) {
      if (!existsSync(join(final, 'PG_VERSION'))) throw err;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return final;
  })();
  templatePromise.catch(() => (templatePromise = undefined));
  return templatePromise;
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const who = pgRunAs();
  const template = await pgTemplate(who);
  return onFreePort(opts.port, async (port) => {
    const dir = tempDir('bksup-pg-');
    chownTo(dir, who);
    const dataDir = join(dir, 'data');
    const socketDir = join(dir, 'sock');
    await execFileP('cp', ['-a', template, dataDir]);
    mkdirSync(socketDir);
    chownTo(socketDir, who);
    const method = opts.password !== undefined ? 'scram-sha-256' : 'trust';
    const hba = join(dataDir, 'pg_hba.conf');
    writeFileSync(hba, `local all all trust\nhost all all 127.0.0.1/32 ${method}\nhost all all ::1/128 ${method}\n`);
    chownTo(hba, who);
    const settings = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: socketDir,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: '16MB',
      max_connections: '60',
      logging_collector: 'off',
      log_min_messages: 'warning',
    };
    const args = ['-D', dataDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const query = async <R extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]> => {
      const client = new pg.Client({ host: socketDir, port, user: 'postgres', database: 'postgres' });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const res = await client.query<R>(sql, params);
        return res.rows;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    const launch = async (): Promise<Spawned> => {
      const s = spawnServer(join(PG_BIN, 'postgres'), args, { cwd: dir, ...who });
      await waitReady('postgres', s, async () => {
        try {
          await query('select 1');
          return true;
        } catch {
          return false; // not listening yet, or "the database system is starting up"
        }
      });
      return s;
    };
    const life = await lifecycle(launch).catch((err: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    });
    try {
      if (opts.password !== undefined) await query(`alter role postgres password ${literal(opts.password)}`);
    } catch (err) {
      await life.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const urlFor = (o: { user?: string; password?: string; database?: string }): string => {
      const user = encodeURIComponent(o.user ?? 'postgres');
      const pw = o.password !== undefined ? `:${encodeURIComponent(o.password)}` : '';
      return `postgres://${user}${pw}@127.0.0.1:${port}/${encodeURIComponent(o.database ?? 'postgres')}`;
    };
    return {
      host: '127.0.0.1',
      port,
      get pid() {
        return life.pid;
      },
      dir,
      dataDir,
      socketDir,
      user: 'postgres',
      password: opts.password,
      url: urlFor(opts.password !== undefined ? { password: opts.password } : {}),
      urlFor,
      query,
      output: () => life.output(),
      crash: () => life.crash(),
      revive: () => life.revive(),
      // SIGINT = "fast shutdown": backends are told to quit, no waiting for clients.
      stop: once(async () => {
        await life.stop('SIGINT');
        rmSync(dir, { recursive: true, force: true });
      }),
    };
  });
}

/** A SQL string literal (standard_conforming_strings is on). */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}
