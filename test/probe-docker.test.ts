// The docker probe against the real docker CLI and daemon (the stand-in CLI in probe-basic covers
// every state shape). Containers come from the locally built test image (never pulled), run with
// no network, are named bksuptest-probe-*, and are removed afterwards.
// Gated like the compose tests: locally without dockerd the suite is reported skipped with the
// reason; under CI=true an unreachable dockerd fails (requireDocker throws).

import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createDockerProbe } from '../src/health/docker.ts';
import type { ProbeContext } from '../src/health/types.ts';
import { docker, requireDocker } from './helpers/docker.ts';
import { ensureTestImage } from './helpers/docker-images.ts';
import { waitFor } from './helpers/wait.ts';

const gate = await requireDocker();
const ctx: ProbeContext = { unit: 'redis', cwd: process.cwd(), env: {}, onLogs: () => () => undefined };
const never = (): AbortSignal => new AbortController().signal;
const created: string[] = [];

function name(tag: string): string {
  const n = `bksuptest-probe-${tag}-${process.pid}-${randomBytes(3).toString('hex')}`;
  created.push(n);
  return n;
}

afterAll(async () => {
  if (created.length) await docker('rm', '-f', ...created).catch(() => undefined);
});

describe.skipIf(!gate.ok)('docker probe (real daemon)', () => {
  it('running without a healthcheck passes; stopped fails with the exit code; unknown is named', async () => {
    const image = await ensureTestImage('bksup-test/redis');
    const c = name('plain');
    await docker('run', '-d', '--name', c, '--network', 'none', image, '--port', '6379', '--save', '');
    const probe = createDockerProbe({ docker: c }, ctx);
    await waitFor(async () => (await probe.check(never())).ok, { message: 'container running' });
    expect(await probe.check(never())).toEqual({ ok: true, detail: 'running (no healthcheck)' });
    await docker('stop', '-t', '5', c);
    const res = await probe.check(never());
    expect(!res.ok && res.reason).toMatch(new RegExp(`^docker ${c}: container is exited \\(exit code \\d+`));
    const ghost = `bksuptest-probe-ghost-${randomBytes(3).toString('hex')}`;
    const missing = await createDockerProbe({ docker: ghost }, ctx).check(never());
    expect(!missing.ok && missing.reason).toMatch(new RegExp(`docker inspect ${ghost}: .*No such (container|object)`, 'i'));
  });

  it('a container healthcheck that cannot pass: starting, then unhealthy with its output', async () => {
    const image = await ensureTestImage('bksup-test/redis');
    const c = name('health');
    // The image has no /bin/sh, so this CMD-SHELL check fails — like the nats compose healthcheck.
    await docker('run', '-d', '--name', c, '--network', 'none', '--health-cmd', 'wget -q http://127.0.0.1/', '--health-interval', '1s', '--health-retries', '1', '--health-timeout', '2s', image, '--port', '6379', '--save', '');
    const probe = createDockerProbe({ docker: true }, { ...ctx, containerId: () => c });
    const first = await probe.check(never());
    expect(!first.ok && first.reason).toMatch(/container health is (starting|unhealthy)/);
    let last = first;
    await waitFor(async () => {
      last = await probe.check(never());
      return !last.ok && /container health is unhealthy/.test(last.reason);
    }, { timeout: 30_000, message: 'docker to mark the container unhealthy' });
    expect(!last.ok && last.reason).toMatch(/^docker container of redis: container health is unhealthy, failing streak \d+: .+/);
  });
});
