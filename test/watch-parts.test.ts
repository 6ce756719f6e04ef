// The burst rule and the default ignores, on a virtual clock and plain paths.

import { describe, expect, it } from 'vitest';
import { Burst } from '../src/watch/debounce.ts';
import { defaultIgnored } from '../src/watch/ignores.ts';
import { FakeScheduler } from './helpers/fake-scheduler.ts';

describe('Burst', () => {
  it('fires once, with every path, after the quiet time that follows the last change', async () => {
    const clock = new FakeScheduler();
    const fired: string[][] = [];
    const burst = new Burst(300, (p) => fired.push(p), clock);
    // 500 changes 10 ms apart: 5 s of changes, never 300 ms quiet.
    for (let i = 0; i < 500; i++) {
      burst.add([`f${i % 250}.py`]);
      await clock.advance(10);
    }
    expect(fired).toEqual([]);
    await clock.advance(300);
    expect(fired.length).toBe(1);
    expect(fired[0]!.length).toBe(250);
    await clock.advance(10_000);
    expect(fired.length).toBe(1);
  });

  it('a cancelled burst never fires', async () => {
    const clock = new FakeScheduler();
    const fired: string[][] = [];
    const burst = new Burst(300, (p) => fired.push(p), clock);
    burst.add(['a.py']);
    burst.cancel();
    await clock.advance(1000);
    expect(fired).toEqual([]);
  });
});

describe('default ignores', () => {
  it('ignore VCS, dependency and cache dirs, *.pyc, the logs and state dirs — nothing else', () => {
    const ignored = defaultIgnored('/p/logs', '/p/.supervisor');
    for (const p of ['/p/.git/HEAD', '/p/web/node_modules/x/i.js', '/p/server/.venv/lib/a.py', '/p/server/apps/__pycache__/a.py', '/p/server/a.pyc', '/p/logs/server.log', '/p/.supervisor/state.json']) {
      expect(ignored(p), p).toBe(true);
    }
    for (const p of ['/p/server/apps/core/nats.py', '/p/logsx/a.py', '/p/web/src/node_modules_like.ts', '/p/server/.env']) {
      expect(ignored(p), p).toBe(false);
    }
  });
});
