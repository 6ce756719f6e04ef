// The ComposeUnit's less travelled paths, each on a real dockerd with its own compose project:
// unhealthy → compose stop → one backoff → up again; an adopted container that dies becomes
// ours; and a second stop arriving while the first is in flight (user stop, then shutdown).

import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ComposeProject } from '../src/compose/driver.ts';
import type { HealthcheckConfig } from '../src/config/types.ts';
import type { StateEvent } from '../src/events.ts';
import { createComposeProject, type TestComposeProject } from './fixtures/compose-unit/project.ts';
import { docker, requireDocker } from './helpers/docker.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

const gate = await requireDocker();
if (!gate.ok) console.warn(`compose unit lifecycle tests not run: ${gate.reason}`);

const UP_MS = 90_000;
const stacks: Stack[] = [];
const projects: TestComposeProject[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.stop();
  for (const p of projects.splice(0)) {
    await p.remove();
    expect(await p.leftovers()).toEqual({ containers: [], volumes: [], networks: [] });
  }
});

async function setup(tag: string, healthcheck: HealthcheckConfig): Promise<{ p: TestComposeProject; s: Stack }> {
  const p = await createComposeProject(tag);
  projects.push(p);
  const s = await startStack(
    { compose: { file: p.file, project: p.project }, units: { nats: { kind: 'compose', service: 'nats', healthcheck: { interval: '250ms', ...healthcheck } } } },
    { dir: p.dir },
  );
  stacks.push(s);
  return { p, s };
}

function waitEvent(s: Stack, unit: string, state: string, from: number, timeout: number): Promise<StateEvent> {
  return waitFor(() => s.events.slice(from).find((e) => e.unit === unit && e.state === state), {
    timeout,
    message: `${unit} ${state} (now ${s.sup.unit(unit)?.state}: ${s.sup.unit(unit)?.snapshot().reason ?? ''})`,
  });
}

const statesSince = (s: Stack, unit: string, from: number): string[] => s.events.slice(from).filter((e) => e.unit === unit).map((e) => e.state);

describe.skipIf(!gate.ok)('ComposeUnit lifecycle on a real dockerd', () => {
  it('unhealthy: stops the container, one backoff with the probe reason, `up` again, healthy again', async () => {
    const flag = 'unhealthy.flag';
    const { p, s } = await setup('unhealthy', { exec: `test ! -e ${flag}`, retries: 2 });
    await s.waitState('nats', 'healthy', UP_MS);
    const id = await p.containerId('nats');

    const mark = s.events.length;
    writeFileSync(join(p.dir, flag), '');
    const backoff = await waitEvent(s, 'nats', 'backoff', mark, 30_000);
    expect(backoff.reason).toMatch(/^unhealthy: .*exit code 1.*; restart 1 in \d+ ms$/);
    // Our own `compose stop` made the container die: that is not a second failure.
    await waitEvent(s, 'nats', 'running', mark, UP_MS);
    rmSync(join(p.dir, flag));
    await waitEvent(s, 'nats', 'healthy', mark, 30_000);
    expect(existsSync(join(p.dir, flag))).toBe(false);
    expect(statesSince(s, 'nats', mark)).toEqual(['unhealthy', 'stopping', 'backoff', 'starting', 'running', 'healthy']);
    expect(s.sup.unit('nats')!.snapshot()).toMatchObject({ state: 'healthy', restarts: 1, health: 'passing' });
    // Same container, started again in place (volume and all).
    expect(await p.inspect('nats')).toMatchObject({ id, running: true });
  });

  it('an adopted container that dies is brought back by us, and from then on is ours: stopped on shutdown', async () => {
    const p = await createComposeProject('adoptdie');
    projects.push(p);
    const pre = new ComposeProject({ file: p.file, project: p.project, cwd: p.dir });
    try {
      const up = await pre.up('nats');
      expect(up, up.ok ? '' : up.reason).toMatchObject({ ok: true });
    } finally {
      await pre.close();
    }
    const s = await startStack(
      { compose: { file: p.file, project: p.project }, units: { nats: { kind: 'compose', service: 'nats', healthcheck: { nats: p.natsUrl, interval: '250ms', retries: 40 } } } },
      { dir: p.dir },
    );
    stacks.push(s);
    await s.waitState('nats', 'healthy', UP_MS);
    expect(s.sup.unit('nats')!.snapshot().adopted).toBe(true);

    const mark = s.events.length;
    await docker('kill', (await p.containerId('nats'))!);
    expect((await waitEvent(s, 'nats', 'backoff', mark, 30_000)).reason).toMatch(/^container died \(exit code 137\)/);
    await waitEvent(s, 'nats', 'healthy', mark, UP_MS);
    expect(s.sup.unit('nats')!.snapshot().adopted).toBeUndefined();
    expect(s.events.slice(mark).find((e) => e.unit === 'nats' && e.state === 'running')?.reason).toBeUndefined();

    await s.stop();
    expect(s.statesOf('nats').slice(-2)).toEqual(['stopping', 'stopped']);
    expect(s.events.at(-1)?.reason ?? '').not.toContain('left running');
    expect(await p.inspect('nats')).toMatchObject({ running: false, status: 'exited' });
  });

  it('a stop while a stop is in flight (user stop, then shutdown) still ends in stopped', async () => {
    const { p, s } = await setup('stop2', { tcp: 1 }); // never passes: no need to wait for healthy
    await s.waitState('nats', 'running', UP_MS);
    const mark = s.events.length;
    expect(s.sup.stop('nats')).toEqual({ ok: true });
    expect(s.sup.unit('nats')!.state).toBe('stopping');
    await s.stop();
    expect(statesSince(s, 'nats', mark)).toEqual(['stopping', 'stopped']);
    expect(s.sup.unit('nats')!.snapshot()).toMatchObject({ state: 'stopped', reason: 'stop requested' });
    expect(await p.inspect('nats')).toMatchObject({ running: false });
  });
});
