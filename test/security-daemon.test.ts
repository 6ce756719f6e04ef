// Secrets and log privacy through the daemon exactly as `bksup up` builds it: the real CLI, a
// config with secrets in the inherited environment and in probe and task URLs, and every channel
// a user (or another local user) can read — the terminal, logs/*.log (rotated too),
// supervisor.log, `bksup status`, `bksup logs`, GET /api/units, the events WebSocket — and the
// daemon's own fatal-error stack.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { controlFile, runCli, startCli, units, waitForControl, writeConfig, type RunningCli } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

const PRELOAD = pathToFileURL(join(import.meta.dirname, 'fixtures', 'security', 'fatal-preload.mjs')).href;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const secret = (label: string): string => `${label}${randomBytes(6).toString('hex')}`;

describe('secrets and log files through `bksup up`', () => {
  it('masks inherited secrets and probe/task URL passwords in every channel, and keeps logs private', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bksup-sec-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const s = {
      apiToken: secret('tok'),
      dbPassword: secret('dbpw'),
      serviceKey: secret('key'),
      pgProbe: secret('pgpw'),
      redisProbe: secret('rdpw'),
      taskPw: secret('taskpw'),
    };
    const closed = await freePort();
    const pgUrl = `postgres://bk:${s.pgProbe}@127.0.0.1:${closed}/bk`;
    const redisUrl = `redis://:${s.redisProbe}@127.0.0.1:${closed}`;
    const taskUrl = `postgres://bk:${s.taskPw}@127.0.0.1:${closed}/postgres`;
    // Children print every secret bare, as a misbehaving program would.
    const printAll = `echo token=$BKSUP_TEST_API_TOKEN; echo "$APP_DB_PASSWORD"; echo key $SERVICE_KEY; echo ${s.pgProbe} ${s.redisProbe} ${s.taskPw}`;
    writeConfig(
      dir,
      `{
      logs: { maxSize: '2KB', keep: 2 },
      units: {
        talker: { command: ${JSON.stringify(`${printAll}; i=0; while [ $i -lt 60 ]; do echo "filler line $i for rotation"; i=$((i+1)); done; echo ready; exec sleep 1000`)},
                  healthcheck: { log: '^ready', interval: '100ms' } },
        crasher: { command: ${JSON.stringify(`${printAll} >&2; exit 3`)}, restart: { policy: 'never' } },
        pgprobe: { command: 'exec sleep 1000', healthcheck: { postgres: ${JSON.stringify(pgUrl)}, interval: '200ms', timeout: '1s' } },
        redisprobe: { command: 'exec sleep 1000', healthcheck: { redis: ${JSON.stringify(redisUrl)}, interval: '200ms', timeout: '1s' } },
        ensure: { kind: 'task', postgres: { url: ${JSON.stringify(taskUrl)}, ensureDatabases: ['x'] }, restart: { policy: 'never' } },
      },
    }`,
    );
    const env = {
      BKSUP_TEST_API_TOKEN: s.apiToken,
      APP_DB_PASSWORD: s.dbPassword,
      SERVICE_KEY: s.serviceKey,
      BKSUP_FATAL_URL: pgUrl,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${PRELOAD}`.trim(),
    };
    const up: RunningCli = startCli(dir, ['up'], env);
    cleanups.push(() => up.child.kill('SIGKILL'));
    const control = await waitForControl(dir);

    const frames: string[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${control.port}/api/events`, { headers: { authorization: `Bearer ${control.token}` } });
    cleanups.push(() => ws.terminate());
    ws.on('message', (d: Buffer) => frames.push(d.toString()));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));

    const settled = await waitFor(
      async () => {
        const u = await units(dir);
        const by = Object.fromEntries(u.map((x) => [x.name, x]));
        const probesFailing = ['pgprobe', 'redisprobe'].every((n) => (by[n] as { health?: string | null } | undefined)?.health);
        return by.talker?.state === 'healthy' && by.crasher?.state === 'failed' && by.ensure?.state === 'failed' && probesFailing ? u : undefined;
      },
      { timeout: 60_000, message: 'talker healthy, crasher and ensure failed, both probes failing' },
    );
    const apiText = JSON.stringify(settled);
    const status = await runCli(dir, ['status'], env);
    const statusJson = await runCli(dir, ['status', '--json'], env);
    const logs = await runCli(dir, ['logs', 'talker', 'crasher', 'ensure', '-n', '200'], env);

    // The daemon's own bug: an uncaught error with secrets in its message and stack.
    up.child.kill('SIGUSR2');
    expect(await up.exited).toBe(70);
    ws.terminate();

    const logsDir = join(dir, 'logs');
    const files = readdirSync(logsDir);
    const fileText = files.map((f) => `--- ${f}\n${readFileSync(join(logsDir, f), 'utf8')}`).join('\n');
    const channels: Record<string, string> = {
      terminal: up.output(),
      'log files': fileText,
      'GET /api/units': apiText,
      'bksup status': status.output,
      'bksup status --json': statusJson.output,
      'bksup logs': logs.output,
      'events WebSocket': frames.join('\n'),
    };
    for (const [channel, text] of Object.entries(channels)) {
      for (const [name, value] of Object.entries(s)) expect(text.includes(value) ? text.split("\n").filter((l) => l.includes(value)) : [], `${name} in ${channel}`).toEqual([]);
    }
    // Masked, not missing: the lines and the error are there, with *** in place of the secrets.
    expect(fileText).toContain('token=***');
    expect(fileText).toContain('key ***');
    expect(logs.output).toContain('*** *** ***');
    expect(up.output()).toMatch(/internal error, stopping every unit: Error: fatal while talking to postgres:\/\/bk:\*\*\*@127\.0\.0\.1:\d+\/bk with \*\*\*/);
    expect(readFileSync(join(logsDir, 'supervisor.log'), 'utf8')).toMatch(/internal error: stopping every unit/);
    expect(settled.find((u) => u.name === 'crasher')?.reason).toContain('***');

    // Private: the directory 0700, every file 0600, rotated ones included.
    expect(statSync(logsDir).mode & 0o777).toBe(0o700);
    expect(files).toEqual(expect.arrayContaining(['supervisor.log', 'talker.log', 'talker.log.1', 'crasher.log']));
    for (const f of files) expect((statSync(join(logsDir, f)).mode & 0o777).toString(8), f).toBe('600');
    expect(controlFile(dir)).toBeUndefined();
  }, 120_000);

  it('a flood of idle sockets on the control port does not stop spawning or logging, and the CLI is still served', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bksup-flood-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeConfig(
      dir,
      `{ units: {
        crashy: { command: 'echo up; sleep 0.2; exit 1', restart: { policy: 'always', backoff: { initial: '50ms', max: '50ms' }, maxRestarts: 100000, window: '1s' } },
        ticker: { command: 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done' },
      } }`,
    );
    const up = startCli(dir, ['up']);
    cleanups.push(() => up.child.kill('SIGKILL'));
    const control = await waitForControl(dir);
    // A laptop's usual limit: what the flood would exhaust if it were not bounded.
    execFileSync('prlimit', [`--pid=${control.pid}`, '--nofile=1024:1024']);
    const fds = (): number => readdirSync(`/proc/${control.pid}/fd`).length;
    const restarts = async (): Promise<number> => (await units(dir)).find((u) => u.name === 'crashy')?.restarts ?? 0;
    const tickerBytes = (): number => statSync(join(dir, 'logs', 'ticker.log')).size;
    await waitFor(async () => (await restarts()) >= 2, { timeout: 30_000, message: 'crashy restarting' });

    const flood: Socket[] = [];
    cleanups.push(() => flood.forEach((f) => f.destroy()));
    let closedByDaemon = 0;
    for (let i = 0; i < 3000; i++) {
      const sock = connect(control.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.once('close', () => closedByDaemon++);
      flood.push(sock);
      if (i % 200 === 199) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => closedByDaemon >= 2800, { timeout: 60_000, message: `the daemon closing the flood (${closedByDaemon} of 3000 closed)` });
    const fdsDuringFlood = fds();
    // With the flood still connected (and nothing of it authenticated), the daemon goes on.
    const [r0, b0] = [await restarts(), tickerBytes()];
    await waitFor(async () => (await restarts()) >= r0 + 3 && tickerBytes() > b0, { timeout: 30_000, message: 'restarts and log lines during the flood' });
    const status = await runCli(dir, ['status']);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toMatch(/ticker\s+process\s+healthy/);
    console.log(`[security-daemon] 3000 idle sockets: ${closedByDaemon} closed by the daemon, ${fdsDuringFlood} descriptors open in it`);
    expect(fdsDuringFlood).toBeLessThan(300);

    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
  }, 150_000);

  it('a secret added by a config reload is masked at once in the output of units the reload did not touch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bksup-sec-reload-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fresh = secret('reloadpw');
    writeFileSync(join(dir, 'said.txt'), 'nothing yet\n');
    // `talker` prints whatever said.txt holds, again and again; the reload leaves it alone.
    const talker = `{ command: 'while true; do cat said.txt; sleep 0.1; done' }`;
    writeConfig(dir, `{ units: { talker: ${talker} } }`);
    const up = startCli(dir, ['up']);
    cleanups.push(() => up.child.kill('SIGKILL'));
    await waitForControl(dir);
    const pid = await waitFor(async () => (await units(dir)).find((u) => u.name === 'talker' && u.state === 'healthy')?.pid, { timeout: 30_000, message: 'talker healthy' });
    writeConfig(dir, `{ units: { talker: ${talker}, db: { command: 'exec sleep 1000', env: { DB_PASSWORD: ${JSON.stringify(fresh)} } } } }`);
    const reload = await runCli(dir, ['reload']);
    expect(reload.code, reload.output).toBe(0);
    await waitFor(async () => (await units(dir)).some((u) => u.name === 'db' && u.state === 'healthy'), { timeout: 30_000, message: 'db added by the reload' });
    writeFileSync(join(dir, 'said.txt'), `the new password is ${fresh}\n`);
    const log = join(dir, 'logs', 'talker.log');
    await waitFor(() => readFileSync(log, 'utf8').includes('the new password is ***'), { timeout: 30_000, message: 'the masked line in talker.log' });
    expect((await units(dir)).find((u) => u.name === 'talker')?.pid, 'talker was not restarted by the reload').toBe(pid);
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
    for (const f of readdirSync(join(dir, 'logs'))) expect(readFileSync(join(dir, 'logs', f), 'utf8').includes(fresh), f).toBe(false);
    expect(up.output().includes(fresh), 'terminal').toBe(false);
  }, 90_000);
});
