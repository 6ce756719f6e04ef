// onDependencyFailure: what happens to a running dependent when a dependency it needs
// `healthy` goes down and comes back.

import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from '../src/util/proc.ts';
import { fixture, removeDir, startStack, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) {
    await s.stop();
    removeDir(s.dir);
  }
});

async function stackWith(policy: 'restart' | 'wait' | 'ignore'): Promise<Stack> {
  const s = await startStack({
    units: {
      broker: { command: fixture('forever.mjs'), restart: { policy: 'always', backoff: { initial: '300ms' } } },
      listener: { command: fixture('forever.mjs'), dependsOn: { broker: 'healthy' }, onDependencyFailure: policy },
    },
  });
  stacks.push(s);
  await s.waitState('listener', 'healthy');
  return s;
}

describe('onDependencyFailure', () => {
  it('restart: the dependent is stopped while the dependency is down and started again once it is healthy', async () => {
    const s = await stackWith('restart');
    const before = s.sup.unit('listener')!.pid!;
    const brokerPid = s.sup.unit('broker')!.pid!;
    process.kill(brokerPid, 'SIGKILL');
    const stopped = await s.waitState('listener', 'stopped');
    expect(stopped.reason).toContain('dependency broker is backoff');
    await waitFor(() => !isAlive(before));
    await s.waitState('listener', 'healthy');
    const after = s.sup.unit('listener')!.pid!;
    expect(after).not.toBe(before);
    // The dependent came back only after the broker was healthy again.
    const brokerHealthy = s.events.findLastIndex((e) => e.unit === 'broker' && e.state === 'healthy');
    const listenerStart = s.events.findLastIndex((e) => e.unit === 'listener' && e.state === 'starting');
    expect(listenerStart).toBeGreaterThan(brokerHealthy);
  });

  it('wait: the dependent keeps running and its status names the dependency until it is back', async () => {
    const s = await stackWith('wait');
    const before = s.sup.unit('listener')!.pid!;
    process.kill(s.sup.unit('broker')!.pid!, 'SIGKILL');
    await waitFor(() => s.sup.unit('listener')!.snapshot().reason === 'dependency broker is backoff');
    await s.waitState('broker', 'healthy');
    await waitFor(() => s.sup.unit('listener')!.snapshot().reason === null);
    expect(s.sup.unit('listener')!.pid).toBe(before);
    expect(s.statesOf('listener')).not.toContain('stopping');
  });

  it('ignore: nothing happens to the dependent', async () => {
    const s = await stackWith('ignore');
    const before = s.sup.unit('listener')!.pid!;
    process.kill(s.sup.unit('broker')!.pid!, 'SIGKILL');
    await s.waitState('broker', 'backoff');
    await s.waitState('broker', 'healthy');
    expect(s.sup.unit('listener')!.snapshot()).toMatchObject({ pid: before, state: 'healthy', reason: null });
  });
});

describe('an automatic restart while a needed dependency is down', () => {
  it('waits as pending for the dependency instead of crashing on into the crash-loop budget', async () => {
    const s = await startStack({
      units: {
        broker: { command: fixture('forever.mjs'), restart: { policy: 'always', backoff: { initial: '1500ms' } } },
        listener: {
          command: fixture('forever.mjs'),
          dependsOn: { broker: 'healthy' },
          onDependencyFailure: 'wait',
          restart: { policy: 'always', backoff: { initial: '10ms', max: '10ms' }, maxRestarts: 1, window: '5m' },
        },
      },
    });
    stacks.push(s);
    await s.waitState('listener', 'healthy');
    process.kill(s.sup.unit('broker')!.pid!, 'SIGKILL');
    await s.waitState('broker', 'backoff');
    // The listener dies while its broker is away (its connection went with it).
    process.kill(s.sup.unit('listener')!.pid!, 'SIGKILL');
    const pending = await s.waitState('listener', 'pending');
    expect(pending.reason).toBe('waiting for broker (healthy)');
    await s.waitState('broker', 'healthy');
    await s.waitState('listener', 'healthy');
    expect(s.statesOf('listener')).not.toContain('failed');
    // One restart: the budget (maxRestarts 1) was not spent on runs that could only fail.
    expect(s.sup.unit('listener')!.snapshot().restarts).toBe(1);
  });
});
