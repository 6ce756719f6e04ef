// The compose driver against a real dockerd with real containers (images made by `docker import`
// from the host's nats-server and redis-server; nothing is pulled). Each describe block owns one
// compose project with a unique name and removes exactly that project's containers and volumes.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ComposeProject,
  detectCompose,
  dockerReachable,
  probeCompose,
  projectNameProblem,
  type ComposeCommand,
  type ContainerEvent,
  type DetectResult,
} from '../src/compose/driver.ts';
import { docker, dockerBuffer, freePort, projectLeftovers, removeComposeProject, requireDocker, uniqueProjectName } from './helpers/docker.ts';
import { ensureTestImage } from './helpers/docker-images.ts';
import { waitFor } from './helpers/wait.ts';
import { identify, stillAlive, type KnownProcess } from './helpers/pids.ts';

const gate = await requireDocker();
if (!gate.ok) console.warn(`compose tests not run: ${gate.reason}`);

// v1 (Debian's docker-compose) is always installed where these tests run; v2 only sometimes.
const variants: { label: string; detected: DetectResult }[] = [{ label: 'docker-compose (v1)', detected: await probeCompose(['docker-compose']) }];
const v2 = await probeCompose(['docker', 'compose']);
if (v2.ok) variants.push({ label: 'docker compose (v2)', detected: v2 });

/** Content of the single file in a tar stream (what `docker cp <id>:<file> -` writes). */
function fileFromTar(tar: Buffer): string {
  const size = parseInt(tar.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  return tar.subarray(512, 512 + size).toString('utf8');
}

/** Sends AUTH + PING to redis and resolves with everything it answered. */
function redisAuthPing(port: number, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis on ${port}: no full answer, got ${JSON.stringify(got)}`));
    }, 10_000);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('connect', () => sock.write(`AUTH ${password}\r\nPING\r\n`));
    sock.on('data', (d) => {
      got += d.toString();
      if (got.includes('PONG') || got.includes('-ERR') || got.includes('-WRONGPASS')) {
        clearTimeout(timer);
        sock.end();
        resolve(got);
      }
    });
  });
}

describe.skipIf(!gate.ok)('docker facts', () => {
  it('dockerReachable answers with the server version', async () => {
    const r = await dockerReachable();
    expect(r).toMatchObject({ ok: true });
    if (r.ok) expect(r.serverVersion).toMatch(/^\d+\.\d+/);
  });

  it('dockerReachable names the socket when no daemon listens there', async () => {
    const r = await dockerReachable({ env: { ...process.env, DOCKER_HOST: 'unix:///tmp/bksup-no-such-docker.sock' } });
    expect(r).toEqual({ ok: false, reason: 'Docker is not running: Cannot connect to the Docker daemon at unix:///tmp/bksup-no-such-docker.sock' });
  });

  it('detectCompose finds a compose and caches the answer', async () => {
    const first = detectCompose();
    expect(detectCompose()).toBe(first);
    const d = await first;
    expect(d).toMatchObject({ ok: true });
    if (d.ok) expect(d.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('probeCompose says when a compose command does not exist', async () => {
    expect(await probeCompose(['bksup-no-such-compose'])).toEqual({ ok: false, reason: '`bksup-no-such-compose`: bksup-no-such-compose not found on PATH' });
  });

  it('projectNameProblem accepts compose names and explains bad ones', () => {
    expect(projectNameProblem('bk-lite')).toBeUndefined();
    expect(projectNameProblem('BK Lite')).toMatch(/lowercase letters, digits/);
  });
});

describe.skipIf(!gate.ok).each(variants)('ComposeProject with $label', ({ detected }) => {
  const project = uniqueProjectName('drv');
  const timings: Record<string, number> = {};
  let dir: string;
  let natsPort: number;
  let redisPort: number;
  let bridgedPort: number;
  let compose: ComposeProject;
  let watch: { close(): Promise<void> };
  const events: ContainerEvent[] = [];
  const watchErrors: string[] = [];
  const spawned = new Map<number, KnownProcess>();
  let natsId = '';

  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[name] = Math.round(performance.now() - t0);
    }
  };
  const remember = (): void => {
    for (const k of identify(compose.childPids())) if (!spawned.has(k.pid)) spawned.set(k.pid, k);
  };
  const eventsFor = (id: string, action: string, after = 0): ContainerEvent[] =>
    events.filter((e) => e.id === id && e.action === action && e.time >= after);

  beforeAll(async () => {
    expect(detected, 'compose must be installed').toMatchObject({ ok: true });
    await timed('ensureTestImage nats', () => ensureTestImage('bksup-test/nats'));
    await timed('ensureTestImage redis', () => ensureTestImage('bksup-test/redis'));
    dir = await mkdtemp(join(tmpdir(), 'bksup-compose-'));
    natsPort = await freePort();
    redisPort = await freePort();
    bridgedPort = await freePort();
    await writeFile(
      join(dir, 'docker-compose.yml'),
      [
        "version: '3.8'",
        'services:',
        '  nats:',
        '    image: bksup-test/nats',
        '    network_mode: host',
        `    command: ["-js", "-sd", "/data", "-p", "${natsPort}", "-a", "127.0.0.1"]`,
        '    volumes: ["natsdata:/data"]',
        '  redis:',
        '    image: bksup-test/redis',
        '    network_mode: host',
        `    command: ["--port", "${redisPort}", "--bind", "127.0.0.1", "--requirepass", "$REDIS_PASSWORD"]`,
        // The real stack's shape: compose's own network and a published port.
        '  bridged:',
        '    image: bksup-test/nats',
        `    ports: ["127.0.0.1:${bridgedPort}:4222"]`,
        'volumes:',
        '  natsdata: {}',
        '',
      ].join('\n'),
    );
    compose = new ComposeProject({
      file: join(dir, 'docker-compose.yml'),
      project,
      cwd: dir,
      env: { ...(process.env as Record<string, string>), REDIS_PASSWORD: 'x-redis-secret' },
      compose: detected as ComposeCommand,
    });
    watch = compose.watchEvents((ev) => events.push(ev), { onError: (r) => watchErrors.push(r) });
    remember();
  });

  afterAll(async () => {
    if (compose) {
      remember();
      await watch?.close();
      await compose.close();
      // Every CLI process the driver started is gone (a zombie counts as gone).
      expect(stillAlive(spawned.values()), 'children still alive').toEqual([]);
    }
    await removeComposeProject(project);
    expect(await projectLeftovers(project)).toEqual({ containers: [], volumes: [], networks: [] });
    if (dir) await rm(dir, { recursive: true, force: true });
    console.log(`[timings ${detected.ok ? detected.argv.join(' ') : '?'}] ${JSON.stringify(timings)}`);
  });

  it('up starts the service; containerId and inspect see it running with its named volume', async () => {
    const none = await compose.containerId('nats');
    expect(none).toEqual({ ok: true, id: undefined });

    const up = await timed('up nats (create)', () => compose.up('nats'));
    expect(up, up.ok ? '' : up.reason).toMatchObject({ ok: true });

    const found = await compose.containerId('nats');
    expect(found.ok && found.id).toMatch(/^[0-9a-f]{64}$/);
    natsId = found.ok ? (found.id ?? '') : '';

    const info = await compose.inspect(natsId);
    expect(info).toMatchObject({ ok: true, id: natsId, service: 'nats', running: true, status: 'running', restartCount: 0 });
    if (!info.ok) return;
    expect(info.pid).toBeGreaterThan(0);
    expect(info.health).toBeUndefined();
    expect(info.mounts).toContainEqual({ type: 'volume', name: `${project}_natsdata`, source: expect.any(String), destination: '/data' });
    await waitFor(() => eventsFor(natsId, 'start').length === 1, { timeout: 20_000, message: 'start event' });
  });

  it('followLogs keeps the streams apart: nats logs on stderr, redis on stdout', async () => {
    const got = { stdout: '', stderr: '' };
    const nats = compose.followLogs(natsId, {}, (stream, chunk) => (got[stream] += chunk.toString()));
    remember();
    await waitFor(() => got.stderr.includes('Server is ready'), { timeout: 20_000, message: 'nats "Server is ready" on stderr' });
    expect(got.stderr).toContain(`Listening for client connections on 127.0.0.1:${natsPort}`);
    expect(got.stderr).toContain('Starting JetStream');
    expect(got.stdout).toBe('');
    await nats.close();
    expect(await nats.done).toMatchObject({ closed: true, error: undefined });

    const up = await timed('up redis (create)', () => compose.up('redis'));
    expect(up, up.ok ? '' : up.reason).toMatchObject({ ok: true });
    const redisId = await compose.containerId('redis');
    if (!redisId.ok || !redisId.id) throw new Error(`no redis container: ${JSON.stringify(redisId)}`);
    const rgot = { stdout: '', stderr: '' };
    const redis = compose.followLogs(redisId.id, { tail: 100 }, (stream, chunk) => (rgot[stream] += chunk.toString()));
    remember();
    await waitFor(() => rgot.stdout.includes('Ready to accept connections'), { timeout: 20_000, message: 'redis ready on stdout' });
    expect(rgot.stderr).toBe('');
    // The password came from the project env through compose interpolation.
    expect(await redisAuthPing(redisPort, 'x-redis-secret')).toBe('+OK\r\n+PONG\r\n');
    await redis.close();
  });

  it('watchEvents reports die with the exit code after docker kill, and a follower ends by itself', async () => {
    let ended = false;
    const follower = compose.followLogs(natsId, { tail: 0 }, () => {}, () => (ended = true));
    remember();
    const before = Date.now() - 1000;
    await docker('kill', natsId);
    const die = await waitFor(() => eventsFor(natsId, 'die', before)[0], { timeout: 20_000, message: 'die event' });
    expect(die).toMatchObject({ id: natsId, service: 'nats', exitCode: 137 });
    expect(eventsFor(natsId, 'kill', before)[0]).toMatchObject({ service: 'nats' });
    await waitFor(() => ended, { timeout: 20_000, message: 'docker logs -f to end with the container' });
    expect(await follower.done).toMatchObject({ closed: false, code: 0 });
    const info = await compose.inspect(natsId);
    expect(info).toMatchObject({ ok: true, running: false, status: 'exited', exitCode: 137, pid: 0 });
  });

  it('up brings a killed service back; the named volume outlives a recreated container', async () => {
    // Images have no shell: `docker cp` puts a marker into the volume.
    const marker = join(dir, 'marker.txt');
    await writeFile(marker, `marker ${project}\n`);
    await docker('cp', marker, `${natsId}:/data/marker.txt`);
    const volumeCreated = (await docker('volume', 'inspect', '--format', '{{.CreatedAt}}', `${project}_natsdata`)).trim();

    const since = Date.now();
    let logs = '';
    const up = await timed('up nats (start existing)', () => compose.up('nats'));
    expect(up, up.ok ? '' : up.reason).toMatchObject({ ok: true });
    expect(await compose.containerId('nats')).toEqual({ ok: true, id: natsId });
    expect(await compose.inspect(natsId)).toMatchObject({ ok: true, running: true });
    // Logs since the restart only: the first run's lines are not repeated.
    const f = compose.followLogs(natsId, { since }, (_s, c) => (logs += c.toString()));
    remember();
    await waitFor(() => logs.includes('Server is ready'), { timeout: 20_000, message: 'nats ready after restart' });
    expect(logs.match(/Starting nats-server/g)).toHaveLength(1);
    await f.close();

    await docker('rm', '-f', natsId);
    const again = await timed('up nats (recreate)', () => compose.up('nats'));
    expect(again, again.ok ? '' : again.reason).toMatchObject({ ok: true });
    const fresh = await compose.containerId('nats');
    expect(fresh.ok && fresh.id).toMatch(/^[0-9a-f]{64}$/);
    expect(fresh.ok && fresh.id).not.toBe(natsId);
    natsId = fresh.ok ? (fresh.id ?? '') : '';
    expect(fileFromTar(await dockerBuffer('cp', `${natsId}:/data/marker.txt`, '-'))).toBe(`marker ${project}\n`);
    expect((await docker('volume', 'inspect', '--format', '{{.CreatedAt}}', `${project}_natsdata`)).trim()).toBe(volumeCreated);
  });

  it('stop stops the container and keeps it and its volume', async () => {
    const before = Date.now() - 1000;
    const r = await timed('stop nats', () => compose.stop('nats', 10));
    expect(r, r.ok ? '' : r.reason).toMatchObject({ ok: true });
    expect(await compose.inspect(natsId)).toMatchObject({ ok: true, running: false, status: 'exited' });
    expect(await compose.containerId('nats')).toEqual({ ok: true, id: natsId });
    expect((await docker('volume', 'ls', '-q', '--filter', `name=${project}_natsdata`)).trim()).toBe(`${project}_natsdata`);
    await waitFor(() => eventsFor(natsId, 'stop', before).length === 1, { timeout: 20_000, message: 'stop event' });
  });

  it('the events watcher restarts when its docker events process dies and loses or repeats nothing', async () => {
    const oldPid = compose.eventsPid;
    expect(oldPid).toBeGreaterThan(0);
    const mark = Date.now() - 1;
    process.kill(oldPid!, 'SIGKILL');
    // Act while the watcher is down or restarting: the --since replay must still deliver it.
    const up = await compose.up('nats');
    expect(up, up.ok ? '' : up.reason).toMatchObject({ ok: true });
    await waitFor(() => compose.eventsPid !== undefined && compose.eventsPid !== oldPid, { timeout: 20_000, message: 'new docker events process' });
    remember();
    await waitFor(() => eventsFor(natsId, 'start', mark).length >= 1, { timeout: 20_000, message: 'start event after watcher restart' });
    // A later event proves the new process is live; by then a duplicate would have arrived too.
    await docker('kill', natsId);
    await waitFor(() => eventsFor(natsId, 'die', mark).length >= 1, { timeout: 20_000, message: 'die event from the new watcher' });
    expect(eventsFor(natsId, 'start', mark)).toHaveLength(1);
    expect(eventsFor(natsId, 'die', mark)).toHaveLength(1);
    expect(watchErrors.some((e) => e.startsWith('docker events stopped: killed by SIGKILL'))).toBe(true);
  });

  it('a service on the project network with a published port answers on the host (dockerd runs without default bridge and iptables)', async () => {
    const up = await timed('up bridged (create, with network)', () => compose.up('bridged'));
    expect(up, up.ok ? '' : up.reason).toMatchObject({ ok: true });
    const banner = await waitFor(
      () =>
        new Promise<string>((resolve) => {
          const sock = connect(bridgedPort, '127.0.0.1');
          let got = '';
          sock.on('data', (d) => {
            got += d.toString();
            if (got.includes('\n')) sock.end();
          });
          sock.on('error', () => resolve(''));
          sock.on('close', () => resolve(got));
        }),
      { timeout: 20_000, message: 'NATS INFO through the published port' },
    );
    expect(banner).toMatch(/^INFO \{/);
    expect((await projectLeftovers(project)).networks).toHaveLength(1);
  });

  it('failures are values with clear, redacted reasons', async () => {
    const bad = await compose.up('x-redis-secret-svc');
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.reason).toMatch(/No such service/i);
      expect(bad.reason).not.toContain('x-redis-secret');
      expect(bad.output).not.toContain('x-redis-secret');
    }
    expect(await compose.inspect('bksup-no-such-container')).toEqual({ ok: false, reason: 'container bksup-no-such-container not found' });
    let end: unknown;
    const f = compose.followLogs('bksup-no-such-container', {}, () => {}, (e) => (end = e));
    expect(await f.done).toMatchObject({ closed: false, error: expect.stringMatching(/No such container/i) });
    expect(end).toBeDefined();
  });
});
