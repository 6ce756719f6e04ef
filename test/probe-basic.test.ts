// Probes that need no database server: http, tcp, exec, log, docker (via a stand-in CLI),
// the registry and the subset rule. Real sockets, real child processes.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus, type LogBatch } from '../src/events.ts';
import { createDockerProbe, judgeState, type DockerState } from '../src/health/docker.ts';
import { createExecProbe } from '../src/health/exec.ts';
import { createHttpProbe } from '../src/health/http.ts';
import { createLogProbe } from '../src/health/log.ts';
import { createProbe, PROBE_KINDS, probeKind, probeOnce } from '../src/health/registry.ts';
import { isSubset, subsetMismatch } from '../src/health/subset.ts';
import { createTcpProbe, isSelfConnection, parseHostPort } from '../src/health/tcp.ts';
import type { ProbeContext } from '../src/health/types.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';
import { identify, stillAlive } from './helpers/pids.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'health');

function ctx(over: Partial<ProbeContext> = {}): ProbeContext {
  return { unit: 'web', cwd: process.cwd(), env: process.env as Record<string, string>, onLogs: () => () => undefined, ...over };
}

const never = (): AbortSignal => new AbortController().signal;

function listen(server: Server | NetServer): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

function close(server: Server | NetServer): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

// ---------------------------------------------------------------- http

describe('http probe', () => {
  let server: Server;
  let base: string;
  const seenAuth: (string | undefined)[] = [];
  const hung: ServerResponse[] = [];

  beforeAll(async () => {
    server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      switch (req.url) {
        case '/ok':
          return res.end('fine');
        case '/login-redirect':
          // Points at a port nobody serves: following it would fail the probe.
          res.writeHead(302, { location: 'http://127.0.0.1:1/login?next=/admin/' });
          return res.end();
        case '/fail':
          res.writeHead(503, 'Service Unavailable', { 'content-type': 'text/plain' });
          return res.end('upstream   not ready\nsecond line');
        case '/teapot':
          res.writeHead(418);
          return res.end();
        case '/big':
          res.writeHead(200);
          return res.end(Buffer.alloc(2 * 1024 * 1024, 97));
        case '/auth':
          seenAuth.push(req.headers.authorization);
          return res.end('ok');
        case '/hang':
          hung.push(res);
          return; // never answers
        default:
          res.writeHead(404);
          return res.end('no such page');
      }
    });
    base = `http://127.0.0.1:${await listen(server)}`;
  });
  afterAll(async () => {
    for (const r of hung) r.destroy();
    await close(server);
  });

  it('passes on 2xx', async () => {
    const probe = createHttpProbe({ http: `${base}/ok` }, ctx());
    expect(probe.label).toBe(`http GET ${base}/ok`);
    expect(await probe.check(never())).toEqual({ ok: true, detail: 'HTTP 200' });
  });

  it('does not follow redirects: a 302 to a login page counts as up', async () => {
    const res = await createHttpProbe({ http: `${base}/login-redirect` }, ctx()).check(never());
    expect(res.ok).toBe(true);
    expect(res.ok && res.detail).toContain('HTTP 302 → http://127.0.0.1:1/login');
  });

  it('fails on 5xx with the status and a body excerpt', async () => {
    const res = await createHttpProbe({ http: `${base}/fail` }, ctx()).check(never());
    expect(res).toEqual({ ok: false, reason: `http GET ${base}/fail: HTTP 503 Service Unavailable: upstream not ready second line` });
  });

  it('expectStatus replaces the 2xx/3xx rule', async () => {
    expect((await createHttpProbe({ http: `${base}/teapot`, expectStatus: 418 }, ctx()).check(never())).ok).toBe(true);
    const res = await createHttpProbe({ http: `${base}/login-redirect`, expectStatus: [200, 204] }, ctx()).check(never());
    expect(res.ok).toBe(false);
    expect(!res.ok && res.reason).toContain('HTTP 302 Found, expected 200 or 204');
  });

  it('passes on a large body without reading it all', async () => {
    expect((await createHttpProbe({ http: `${base}/big` }, ctx()).check(never())).ok).toBe(true);
  });

  it('fails with "connection refused" on a closed port', async () => {
    const port = await freePort();
    const res = await createHttpProbe({ http: `http://127.0.0.1:${port}/` }, ctx()).check(never());
    expect(res).toEqual({ ok: false, reason: `http GET http://127.0.0.1:${port}/: connection refused (nothing listening) [ECONNREFUSED]` });
  });

  it('settles when the signal aborts, with "timed out"', async () => {
    const t0 = Date.now();
    const res = await createHttpProbe({ http: `${base}/hang` }, ctx()).check(AbortSignal.timeout(300));
    expect(res).toEqual({ ok: false, reason: `http GET ${base}/hang: timed out` });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('sends URL credentials as Basic auth and never shows the password', async () => {
    const url = `${base.replace('http://', 'http://admin:s3cret-pw@')}/auth`;
    const probe = createHttpProbe({ http: url }, ctx());
    expect(probe.label).not.toContain('s3cret-pw');
    expect((await probe.check(never())).ok).toBe(true);
    expect(seenAuth.at(-1)).toBe(`Basic ${Buffer.from('admin:s3cret-pw').toString('base64')}`);
    const port = await freePort();
    const res = await createHttpProbe({ http: `http://admin:s3cret-pw@127.0.0.1:${port}/` }, ctx()).check(never());
    expect(!res.ok && res.reason).toContain('***');
    expect(JSON.stringify(res)).not.toContain('s3cret-pw');
  });

  it('rejects a malformed URL naming the unit', () => {
    expect(() => createHttpProbe({ http: 'localhost:3011' }, ctx())).toThrow(/unit "web": healthcheck http "localhost:3011" must start with http/);
    expect(() => createHttpProbe({ http: 'not a url' }, ctx())).toThrow(/unit "web": healthcheck http "not a url" is not a URL/);
  });
});

// ---------------------------------------------------------------- tcp

describe('tcp probe', () => {
  it('parses the target forms', () => {
    expect(parseHostPort(5432)).toEqual({ host: '127.0.0.1', port: 5432 });
    expect(parseHostPort('5432')).toEqual({ host: '127.0.0.1', port: 5432 });
    expect(parseHostPort('db.local:15432')).toEqual({ host: 'db.local', port: 15432 });
    expect(parseHostPort('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseHostPort('tcp://127.0.0.1:4222')).toEqual({ host: '127.0.0.1', port: 4222 });
    expect(parseHostPort('db:99999')).toMatch(/outside 1-65535/);
    expect(parseHostPort('nope')).toMatch(/is not host:port/);
    expect(() => createTcpProbe({ tcp: 'nope' }, ctx())).toThrow(/unit "web": healthcheck tcp "nope" is not host:port/);
  });

  it('passes against a listener and fails on a closed port', async () => {
    const server = createNetServer((s) => s.end());
    const port = await listen(server);
    try {
      expect(await createTcpProbe({ tcp: port }, ctx()).check(never())).toEqual({ ok: true, detail: 'connected' });
    } finally {
      await close(server);
    }
    const res = await createTcpProbe({ tcp: `127.0.0.1:${port}` }, ctx()).check(never());
    expect(res).toEqual({ ok: false, reason: `tcp 127.0.0.1:${port}: connection refused (nothing listening) [ECONNREFUSED]` });
  });

  it('an already-aborted signal settles at once', async () => {
    const ac = new AbortController();
    ac.abort(new Error('monitor stopped'));
    expect(await createTcpProbe({ tcp: 1 }, ctx()).check(ac.signal)).toEqual({ ok: false, reason: 'tcp 127.0.0.1:1: monitor stopped' });
  });

  it('tells a connection that reached itself (source port = the closed target port) from one a listener accepted', async () => {
    const connected = (opts: { port: number; localPort?: number }): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = netConnect({ host: '127.0.0.1', localAddress: '127.0.0.1', ...opts });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    // What the kernel does by chance when it picks the target's own port as the source: forced here.
    const port = await freePort();
    const self = await connected({ port, localPort: port });
    expect(isSelfConnection(self)).toBe(true);
    self.destroy();
    const server = createNetServer((s) => s.end());
    const served = await listen(server);
    try {
      const other = await connected({ port: served });
      expect(isSelfConnection(other)).toBe(false);
      other.destroy();
    } finally {
      await close(server);
    }
  });
});

// ---------------------------------------------------------------- exec

describe('exec probe', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bksup-exec-'));
    writeFileSync(join(dir, 'marker'), '');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes on exit 0, fails with the exit code and the last stderr line', async () => {
    expect(await createExecProbe({ exec: 'exit 0' }, ctx()).check(never())).toEqual({ ok: true, detail: 'exit 0' });
    const res = await createExecProbe({ exec: 'echo first >&2; echo "db not ready" >&2; echo out; exit 3' }, ctx()).check(never());
    expect(res).toEqual({ ok: false, reason: 'exec echo first >&2; echo "db not ready" >&2; echo out; exit 3: exit code 3: db not ready' });
  });

  it('falls back to the last stdout line when stderr is empty', async () => {
    const res = await createExecProbe({ exec: ['/bin/sh', '-c', 'echo "status: starting"; exit 1'] }, ctx()).check(never());
    expect(!res.ok && res.reason).toMatch(/exit code 1: status: starting$/);
  });

  it('runs in cwd (relative to the unit cwd) with the unit env', async () => {
    const c = ctx({ cwd: tmpdir(), env: { ...(process.env as Record<string, string>), PROBE_FLAG: 'yes' } });
    const rel = dir.slice(tmpdir().length + 1);
    expect((await createExecProbe({ exec: 'test -f marker && test "$PROBE_FLAG" = yes', cwd: rel }, c).check(never())).ok).toBe(true);
    expect((await createExecProbe({ exec: 'test -f marker' }, c).check(never())).ok).toBe(false);
  });

  it('names a missing program', async () => {
    const res = await createExecProbe({ exec: ['bksup-no-such-program', '--x'] }, ctx()).check(never());
    expect(!res.ok && res.reason).toContain('cannot run "bksup-no-such-program": not found');
  });

  it('masks secret env values in the reason', async () => {
    const c = ctx({ env: { ...(process.env as Record<string, string>), DB_PASSWORD: 'hunter2-secret' } });
    const res = await createExecProbe({ exec: 'echo "login failed for hunter2-secret" >&2; exit 1' }, c).check(never());
    expect(JSON.stringify(res)).not.toContain('hunter2-secret');
  });

  it('on timeout kills the whole process group', async () => {
    const pids = join(dir, 'pids-timeout');
    const probe = createExecProbe({ exec: `echo $$ > ${pids}; sleep 30 & echo $! >> ${pids}; wait` }, ctx());
    const res = await probe.check(AbortSignal.timeout(1000));
    expect(res).toEqual({ ok: false, reason: expect.stringMatching(/: timed out$/) });
    const list = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    expect(list).toHaveLength(2);
    const known = identify(list);
    await waitFor(() => stillAlive(known).length === 0, { timeout: 10_000, message: 'shell and its sleep to be killed' });
  });

  it('reaps what a passing command left running in the background', async () => {
    const pids = join(dir, 'pids-bg');
    const res = await createExecProbe({ exec: `sleep 30 & echo $! > ${pids}; exit 0` }, ctx()).check(never());
    expect(res.ok).toBe(true);
    const known = identify([Number(readFileSync(pids, 'utf8').trim())]);
    await waitFor(() => stillAlive(known).length === 0, { timeout: 10_000, message: 'background sleep to be killed' });
  });
});

// ---------------------------------------------------------------- log

describe('log probe', () => {
  function busCtx(): { bus: EventBus; c: ProbeContext; active: () => number } {
    const bus = new EventBus();
    let active = 0;
    const c = ctx({
      onLogs: (fn) => {
        active++;
        const off = bus.onLogs(fn);
        return () => {
          active--;
          off();
        };
      },
    });
    return { bus, c, active: () => active };
  }
  let seq = 1;
  const batch = (unit: string, stream: LogBatch['stream'], ...lines: string[]): LogBatch => {
    const b = { unit, stream, firstSeq: seq, ts: Date.now(), lines };
    seq += lines.length;
    return b;
  };

  it('passes once a line of this unit matched, and stays passing (latched)', async () => {
    const { bus, c, active } = busCtx();
    const probe = createLogProbe({ log: 'Ready in \\d+ms' }, c);
    expect(active()).toBe(1);
    expect(await probe.check(never())).toEqual({ ok: false, reason: 'log /Ready in \\d+ms/: no output line matched yet' });
    bus.publishLogs(batch('web', 'stdout', 'compiling...', 'still compiling'));
    bus.publishLogs(batch('server', 'stdout', 'Ready in 5ms')); // another unit
    bus.publishLogs(batch('web', 'system', 'Ready in 1ms (said the supervisor)'));
    expect((await probe.check(never())).ok).toBe(false);
    bus.publishLogs(batch('web', 'stderr', 'warn: x', ' ✓ Ready in 2345ms', 'later'));
    expect(await probe.check(never())).toEqual({ ok: true, detail: 'matched:  ✓ Ready in 2345ms' });
    expect(active()).toBe(0); // no more per-line work after the match
    bus.publishLogs(batch('web', 'stdout', 'crash?'));
    expect((await probe.check(never())).ok).toBe(true);
    probe.close?.();
  });

  it('close() unsubscribes', () => {
    const { c, active } = busCtx();
    const probe = createLogProbe({ log: 'x' }, c);
    expect(active()).toBe(1);
    probe.close?.();
    probe.close?.();
    expect(active()).toBe(0);
  });

  it('rejects an invalid regex naming the unit', () => {
    expect(() => createLogProbe({ log: '(' }, ctx())).toThrow(/unit "web": healthcheck log \/\(\/ is not a valid regular expression/);
  });
});

// ---------------------------------------------------------------- docker (stand-in CLI)

describe('docker probe', () => {
  const env = { ...(process.env as Record<string, string>), PATH: `${join(FIXTURES, 'bin')}:${process.env.PATH ?? ''}` };
  const dctx = (over: Partial<ProbeContext> = {}): ProbeContext => ctx({ env, ...over });

  it('healthy container passes; starting/unhealthy fail with the health output', async () => {
    expect(await createDockerProbe({ docker: 'healthy' }, dctx()).check(never())).toEqual({ ok: true, detail: 'healthy' });
    expect(await createDockerProbe({ docker: 'starting' }, dctx()).check(never())).toEqual({
      ok: false,
      reason: 'docker starting: container health is starting, failing streak 1: pg_isready: no response',
    });
    const res = await createDockerProbe({ docker: 'unhealthy' }, dctx()).check(never());
    expect(!res.ok && res.reason).toMatch(/^docker unhealthy: container health is unhealthy, failing streak 5: OCI runtime exec failed: .*wget/);
  });

  it('a container without a healthcheck passes while running', async () => {
    expect(await createDockerProbe({ docker: 'plain-running' }, dctx()).check(never())).toEqual({ ok: true, detail: 'running (no healthcheck)' });
    expect(await createDockerProbe({ docker: 'exited' }, dctx()).check(never())).toEqual({ ok: false, reason: 'docker exited: container is exited (exit code 137)' });
    expect(await createDockerProbe({ docker: 'restarting' }, dctx()).check(never())).toEqual({
      ok: false,
      reason: 'docker restarting: container is restarting (last exit code 1)',
    });
  });

  it('reports the CLI error for an unknown container', async () => {
    expect(await createDockerProbe({ docker: 'ghost' }, dctx()).check(never())).toEqual({
      ok: false,
      reason: 'docker ghost: docker inspect ghost: Error response from daemon: No such container: ghost',
    });
  });

  it('docker: true uses the unit container id, once known', async () => {
    let id: string | undefined = undefined;
    const probe = createDockerProbe({ docker: true }, dctx({ containerId: () => id }));
    expect(probe.label).toBe('docker container of web');
    expect(await probe.check(never())).toEqual({ ok: false, reason: 'docker container of web: container not known yet (not created?)' });
    id = 'healthy';
    expect((await probe.check(never())).ok).toBe(true);
  });

  it('settles on abort', async () => {
    expect(await createDockerProbe({ docker: 'slow' }, dctx()).check(AbortSignal.timeout(500))).toEqual({ ok: false, reason: 'docker slow: timed out' });
  });

  it('judges states', () => {
    const s = (over: DockerState): DockerState => ({ Status: 'running', Running: true, ...over });
    expect(judgeState(s({ Health: null })).ok).toBe(true);
    expect(judgeState(s({ Paused: true }))).toEqual({ ok: false, reason: 'container is paused' });
    expect(judgeState({ Status: 'exited', Running: false, ExitCode: 1, OOMKilled: true })).toEqual({ ok: false, reason: 'container is exited (exit code 1, OOM-killed)' });
  });
});

// ---------------------------------------------------------------- registry + subset

describe('registry', () => {
  it('names the probe kind of a spec', () => {
    expect(probeKind({ http: 'http://x/' })).toBe('http');
    expect(probeKind({ tcp: 1 })).toBe('tcp');
    expect(probeKind({ exec: 'true' })).toBe('exec');
    expect(probeKind({ log: 'x' })).toBe('log');
    expect(probeKind({ postgres: 'postgres://x' })).toBe('postgres');
    expect(probeKind({ nats: 'nats://x' })).toBe('nats');
    expect(probeKind({ redis: 'redis://x' })).toBe('redis');
    expect(probeKind({ docker: true })).toBe('docker');
    expect(() => probeKind({ interval: '1s' } as never)).toThrow(`healthcheck: no probe given; use one of ${PROBE_KINDS.join(', ')}`);
    expect(() => probeKind({ http: 'http://x/', tcp: 1 } as never)).toThrow('healthcheck: one probe per healthcheck object, found http and tcp');
  });

  it('builds each kind', () => {
    const specs = [
      { http: 'http://127.0.0.1:1/' },
      { tcp: 1 },
      { exec: 'true' },
      { log: 'x' },
      { postgres: 'postgres://u:pw@127.0.0.1:1/db' },
      { nats: 'nats://127.0.0.1:1' },
      { redis: 'redis://:pw@127.0.0.1:1' },
      { docker: 'c' },
    ];
    expect(specs.map((s) => createProbe(s, ctx()).label)).toEqual([
      'http GET http://127.0.0.1:1/',
      'tcp 127.0.0.1:1',
      'exec true',
      'log /x/',
      'postgres postgres://u:***@127.0.0.1:1/db',
      'nats nats://127.0.0.1:1',
      'redis 127.0.0.1:1 (auth)',
      'docker c',
    ]);
  });

  it('probeOnce builds, runs within the timeout and closes; a bad spec is a failed result', async () => {
    const port = await freePort();
    expect(await probeOnce({ tcp: port }, ctx(), 5000)).toEqual({ ok: false, reason: `tcp 127.0.0.1:${port}: connection refused (nothing listening) [ECONNREFUSED]` });
    expect(await probeOnce({ tcp: 'x:y' }, ctx(), 5000)).toEqual({ ok: false, reason: 'unit "web": healthcheck tcp "x:y" is not host:port or a port number (e.g. 127.0.0.1:5432 or 5432)' });
  });
});

describe('subset rule', () => {
  it('objects: expected keys must match, extra keys are fine', () => {
    const reply = { success: true, result: ['domain.com', 'other'], extra: { a: 1 } };
    expect(isSubset({ success: true }, reply)).toBe(true);
    expect(isSubset({ success: true, result: ['domain.com'] }, reply)).toBe(true);
    expect(subsetMismatch({ success: false }, reply)).toBe('at .success: expected false, got true');
    expect(subsetMismatch({ result: ['x.com'] }, reply)).toBe('at .result: no element matches "x.com"');
    expect(subsetMismatch({ missing: 1 }, reply)).toBe('at .missing: missing');
    expect(subsetMismatch({ extra: { a: 2 } }, reply)).toBe('at .extra.a: expected 2, got 1');
    expect(subsetMismatch({ a: 1 }, [1])).toBe('at (root): expected an object, got an array');
    expect(isSubset([{ id: 2 }], [{ id: 1 }, { id: 2, name: 'b' }])).toBe(true);
    expect(isSubset(null, null)).toBe(true);
    expect(isSubset({ a: null }, { a: undefined })).toBe(false);
  });
});
