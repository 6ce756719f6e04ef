// The demo's own PostgreSQL: pg-initdb makes a cluster (password, database) once and is a no-op
// after; `sh pg.sh postgres …` execs down to the postmaster, so the pid the supervisor holds IS
// postgres (group leader, running unprivileged when we are root) and SIGINT stops it cleanly.

import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, readStat } from '../src/util/proc.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = join(import.meta.dirname, '..', 'examples', 'bklite-demo', 'bin');
const PASSWORD = 'initdb-pass';
let dir: string;

function runNode(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(BIN, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => resolve({ code, output: out }));
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bksup-demo-pg-'));
  // mkdtemp makes 0700: PostgreSQL runs unprivileged when we are root and must reach its data.
  chmodSync(dir, 0o755);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the demo PostgreSQL', () => {
  it('pg-initdb creates the cluster once; postgres runs as the supervised pid and stops on SIGINT', async () => {
    const pgdata = join(dir, 'data', 'pg');
    const env = { PGDATA: pgdata, DB_USER: 'postgres', DB_PASSWORD: PASSWORD, DB_NAME: 'bklite' };
    const first = await runNode('pg-initdb.mjs', env);
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain(`pg-initdb: done: ${pgdata}`);
    expect(existsSync(`${pgdata}.initdb-tmp`)).toBe(false);
    expect(existsSync(`${pgdata}.initdb-tmp.pw`)).toBe(false); // the password file is gone

    const second = await runNode('pg-initdb.mjs', env);
    expect(second.code).toBe(0);
    expect(second.output).toMatch(/already holds a PostgreSQL \d+ cluster; nothing to do/);

    const port = await freePort();
    const child = spawn('/bin/sh', [join(BIN, 'pg.sh'), 'postgres', '-D', pgdata, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const pid = child.pid!;
    try {
      // The password and the application database from initdb work over TCP.
      const rows = await waitFor(
        async () => {
          const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'bklite' });
          c.on('error', () => undefined);
          try {
            await c.connect();
            return (await c.query<{ db: string }>('select current_database() as db')).rows;
          } catch {
            return undefined;
          } finally {
            await c.end().catch(() => undefined);
          }
        },
        { timeout: 30_000, message: `postgres on ${port} (${out})` },
      );
      expect(rows).toEqual([{ db: 'bklite' }]);

      // sh and setpriv exec'd: the spawned pid is the postmaster and leads its process group.
      expect(readStat(pid)?.comm).toBe('postgres');
      expect(readStat(pid)?.pgid).toBe(pid);
      if (process.getuid?.() === 0) {
        const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        expect(Number(uid)).not.toBe(0);
      }

      process.kill(pid, 'SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('received fast shutdown request');
    } finally {
      if (isAlive(pid)) process.kill(-pid, 'SIGKILL');
    }
  }, 90_000);

  it('refuses a non-empty directory that is not a cluster', async () => {
    const pgdata = join(dir, 'junk');
    mkdirSync(pgdata, { recursive: true });
    writeFileSync(join(pgdata, 'file'), 'x');
    const r = await runNode('pg-initdb.mjs', { PGDATA: pgdata });
    expect(r.code).toBe(1);
    expect(r.output).toContain(`${pgdata} exists, is not empty and holds no PostgreSQL cluster (no PG_VERSION): move it away or remove it`);
  });

  it.runIf(process.getuid?.() === 0)('as root, says when the PostgreSQL account cannot reach the data directory', async () => {
    const closed = mkdtempSync(join(tmpdir(), 'bksup-demo-pg-closed-')); // 0700, root's
    try {
      const r = await runNode('pg-initdb.mjs', { PGDATA: join(closed, 'pg') });
      expect(r.code).toBe(1);
      expect(r.output).toMatch(/PostgreSQL runs as '\w+', who cannot write .*: give every parent directory o\+x/);
      expect(existsSync(join(closed, 'pg.initdb-tmp'))).toBe(false);
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });
});
