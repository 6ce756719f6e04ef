// The compose driver's parts that need no Docker daemon: parsing of docker's output, the events
// watcher's restart and de-duplication (against a fake docker CLI), the log follower's stream
// separation and process clean-up, and the command runner's timeout.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventWatcher, nanosToSince, parseEventLine, type ContainerEvent } from '../src/compose/events.ts';
import { errorLine, runCommand } from '../src/compose/exec.ts';
import { followContainerLogs, msToSince } from '../src/compose/logs.ts';
import { parseInspect } from '../src/compose/driver.ts';
import { identify, stillAlive } from './helpers/pids.ts';
import { waitFor } from './helpers/wait.ts';

const FAKE_DOCKER = fileURLToPath(new URL('./fixtures/compose/fake-docker.sh', import.meta.url));

const ID = 'a'.repeat(64);
const line = (action: string, nanos: string, attrs: Record<string, string> = {}): string =>
  `{"status":"${action}","id":"${ID}","from":"img","Type":"container","Action":"${action}","Actor":{"ID":"${ID}","Attributes":${JSON.stringify({ name: 'p-nats-1', 'com.docker.compose.service': 'nats', ...attrs })}},"scope":"local","time":${nanos.slice(0, 10)},"timeNano":${nanos}}`;

describe('parsing', () => {
  it('parseEventLine keeps the nanosecond timestamp exact and reads service and exit code', () => {
    const p = parseEventLine(line('die', '1795673969897597144', { exitCode: '137' }));
    expect(p?.nanos).toBe(1795673969897597144n);
    expect(p?.event).toMatchObject({ id: ID, action: 'die', service: 'nats', name: 'p-nats-1', exitCode: 137, time: 1795673969897 });
    expect(parseEventLine('not json')).toBeUndefined();
    expect(parseEventLine('{"foo":1}')).toBeUndefined();
  });

  it('formats --since values', () => {
    expect(nanosToSince(1795673969000000005n)).toBe('1795673969.000000005');
    expect(msToSince(1795673969042)).toBe('1795673969.042');
  });

  it('parseInspect maps docker inspect JSON', () => {
    const r = parseInspect(
      JSON.stringify({
        Id: ID,
        Name: '/p-nats-1',
        RestartCount: 2,
        State: { Status: 'running', Running: true, ExitCode: 0, Pid: 4242, StartedAt: '2026-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z', Health: { Status: 'healthy' } },
        Config: { Image: 'bksup-test/nats', Labels: { 'com.docker.compose.service': 'nats' }, Env: ['PASSWORD=secret'] },
        Mounts: [{ Type: 'volume', Name: 'p_data', Source: '/var/lib/docker/volumes/p_data/_data', Destination: '/data' }],
      }),
      ID,
    );
    expect(r).toEqual({
      ok: true,
      id: ID,
      name: 'p-nats-1',
      service: 'nats',
      image: 'bksup-test/nats',
      running: true,
      status: 'running',
      exitCode: 0,
      health: 'healthy',
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: '0001-01-01T00:00:00Z',
      restartCount: 2,
      pid: 4242,
      oomKilled: false,
      mounts: [{ type: 'volume', name: 'p_data', source: '/var/lib/docker/volumes/p_data/_data', destination: '/data' }],
    });
    expect(parseInspect('garbage', 'x')).toEqual({ ok: false, reason: 'docker inspect x: unreadable output' });
  });

  it('errorLine picks the line that says what went wrong', () => {
    expect(errorLine('Creating network\nERROR: No such service: foo\n')).toBe('ERROR: No such service: foo');
    expect(errorLine('\n  last words  \n')).toBe('last words');
    expect(errorLine('')).toBe('');
  });
});

describe('with a fake docker CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bksup-compose-parts-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the events watcher restarts a dying CLI from the last event seen and delivers every event once', async () => {
    const events = join(dir, 'events.jsonl');
    const args = join(dir, 'events-args.log');
    // Two events share one timestamp: the resume point repeats both, both must be recognised.
    await writeFile(
      events,
      [line('create', '1795673969000000001'), 'garbage', line('start', '1795673969000000002'), line('health_status: healthy', '1795673969000000002'), ''].join('\n'),
    );
    const got: ContainerEvent[] = [];
    const errors: string[] = [];
    const w = new EventWatcher({
      docker: FAKE_DOCKER,
      env: { ...process.env, FAKE_ARGS_LOG: args, FAKE_STDOUT: events, FAKE_EXIT: '1' },
      filters: ['label=com.docker.compose.project=p'],
      onEvent: (e) => got.push(e),
      onError: (r) => errors.push(r),
      now: () => 1795673969000, // the watch starts before the canned events
      restartDelayMs: 5,
      maxRestartDelayMs: 20,
    });
    w.start();
    await waitFor(() => errors.length >= 4, { timeout: 20_000, message: 'four restarts' });
    await w.close();
    expect(got.map((e) => e.action)).toEqual(['create', 'start', 'health_status: healthy']);
    expect(errors[0]).toBe('docker events stopped: exit code 1');
    const spawns = (await readFile(args, 'utf8')).trim().split('\n');
    expect(spawns[0]).toBe("events --format {{json .}} --since 1795673969.000000000 --filter type=container --filter label=com.docker.compose.project=p");
    expect(spawns[1]).toContain('--since 1795673969.000000002 ');
    expect(spawns.at(-1)).toContain('--since 1795673969.000000002 ');
  });

  it('the events watcher reports a missing CLI and close() ends the retries', async () => {
    const errors: string[] = [];
    const w = new EventWatcher({ docker: join(dir, 'no-such-docker'), env: process.env, filters: [], onEvent: () => {}, onError: (r) => errors.push(r), restartDelayMs: 5 });
    w.start();
    await waitFor(() => errors.length >= 2, { timeout: 20_000, message: 'two failures' });
    await w.close();
    expect(errors[0]).toMatch(/^docker events stopped: .*no-such-docker not found on PATH$/);
    expect(w.pid).toBeUndefined();
  });

  it('close() kills a live events process', async () => {
    const w = new EventWatcher({
      docker: FAKE_DOCKER,
      env: { ...process.env, FAKE_ARGS_LOG: join(dir, 'stay.log'), FAKE_STAY: '1' },
      filters: [],
      onEvent: () => {},
    });
    w.start();
    const pid = w.pid!;
    await waitFor(async () => (await readFile(join(dir, 'stay.log'), 'utf8').catch(() => '')).includes('events'), { message: 'fake started' });
    const known = identify([pid]);
    expect(stillAlive(known)).toEqual([pid]);
    await w.close();
    expect(stillAlive(known)).toEqual([]);
  });

  it('followContainerLogs keeps stdout and stderr apart and reports the CLI failing', async () => {
    const out = join(dir, 'out.txt');
    const err = join(dir, 'err.txt');
    await writeFile(out, 'to stdout\n');
    await writeFile(err, 'Error response from daemon: No such container: x\n');
    const got = { stdout: '', stderr: '' };
    const f = followContainerLogs(
      { docker: FAKE_DOCKER, env: { ...process.env, FAKE_ARGS_LOG: join(dir, 'logs-args.log'), FAKE_STDOUT: out, FAKE_STDERR: err, FAKE_EXIT: '1' }, id: 'x', since: 1795673969042, tail: 5 },
      (s, c) => (got[s] += c.toString()),
      () => {},
    );
    expect(await f.done).toEqual({ code: 1, signal: null, closed: false, error: 'Error response from daemon: No such container: x' });
    expect(got).toEqual({ stdout: 'to stdout\n', stderr: 'Error response from daemon: No such container: x\n' });
    expect((await readFile(join(dir, 'logs-args.log'), 'utf8')).trim()).toBe('logs --follow --since 1795673969.042 --tail 5 x');
  });

  it('followContainerLogs close() kills the CLI', async () => {
    let ends = 0;
    const f = followContainerLogs(
      { docker: FAKE_DOCKER, env: { ...process.env, FAKE_ARGS_LOG: join(dir, 'logs-stay.log'), FAKE_STAY: '1' }, id: 'x' },
      () => {},
      () => ends++,
    );
    await waitFor(async () => (await readFile(join(dir, 'logs-stay.log'), 'utf8').catch(() => '')).includes('logs'), { message: 'fake started' });
    const known = identify([f.pid!]);
    await f.close();
    expect(await f.done).toMatchObject({ closed: true, error: undefined });
    expect(stillAlive(known)).toEqual([]);
    expect(ends).toBe(1);
  });

  it('runCommand kills the whole process group on timeout', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    const r = await runCommand(['sh', '-c', `sleep 1000 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 });
    expect(r).toMatchObject({ timedOut: true, code: null, signal: 'SIGTERM' });
    const grandchild = identify([Number(await readFile(pidFile, 'utf8'))]);
    await waitFor(() => stillAlive(grandchild).length === 0, { timeout: 10_000, message: 'grandchild gone' });
  });
});
