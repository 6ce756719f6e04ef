// `once.outputs` (an install task runs again when what it made is gone) and `optional` tasks
// (dev.sh's `|| true`: a failure is reported, blocks nothing), with real shell children.

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatStatusTable } from '../src/client/status.ts';
import type { UserConfig } from '../src/config/types.ts';
import { removeDir, startStack, tempDir, type Stack } from './helpers/stack.ts';

const stacks: Stack[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) removeDir(d);
});

async function run(user: UserConfig, dir: string): Promise<Stack> {
  const s = await startStack(user, { dir });
  stacks.push(s);
  return s;
}

describe('once.outputs', () => {
  it('skips while inputs are unchanged and the output exists; runs again when the output is deleted', async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeFileSync(join(dir, 'uv.lock'), 'v1\n');
    const user: UserConfig = {
      units: {
        install: {
          kind: 'task',
          command: 'mkdir -p .venv && echo ran >> runs.txt',
          once: { inputs: ['uv.lock'], outputs: ['.venv'] },
        },
      },
    };
    const first = await run(user, dir);
    await first.waitState('install', 'completed');
    await first.stop();

    const second = await run(user, dir);
    await second.waitState('install', 'skipped');
    await second.stop();
    expect(readFileSync(join(dir, 'runs.txt'), 'utf8')).toBe('ran\n');

    rmSync(join(dir, '.venv'), { recursive: true });
    const third = await run(user, dir);
    await third.waitState('install', 'completed');
    await third.stop();
    expect(existsSync(join(dir, '.venv'))).toBe(true);
    expect(readFileSync(join(dir, 'runs.txt'), 'utf8')).toBe('ran\nran\n');
    expect(readFileSync(join(dir, 'logs', 'install.log'), 'utf8')).toContain('.venv is missing: running');
  });
});

describe('once after once', () => {
  it('a once task runs again when a once task it depends on ran (not skipped) in this run', async () => {
    const dir = tempDir();
    dirs.push(dir);
    writeFileSync(join(dir, 'uv.lock'), 'v1\n');
    const user: UserConfig = {
      units: {
        install: { kind: 'task', command: 'echo install >> runs.txt', once: { inputs: ['uv.lock'] } },
        'db-init': { kind: 'task', command: 'echo db-init >> runs.txt', dependsOn: { install: 'completed' }, once: true },
      },
    };
    for (const expected of [['completed', 'completed'], ['skipped', 'skipped']]) {
      const s = await run(user, dir);
      await s.waitState('install', expected[0] as 'completed');
      await s.waitState('db-init', expected[1] as 'completed');
      await s.stop();
    }
    writeFileSync(join(dir, 'uv.lock'), 'v2\n');
    const s = await run(user, dir);
    await s.waitState('db-init', 'completed');
    await s.stop();
    expect(readFileSync(join(dir, 'runs.txt'), 'utf8')).toBe('install\ndb-init\ninstall\ndb-init\n');
    expect(readFileSync(join(dir, 'logs', 'db-init.log'), 'utf8')).toContain('install ran in this run: running too');
  });
});

describe('optional tasks', () => {
  it('a failed optional task lets `completed` dependents run, and status warns about it', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const s = await run(
      {
        units: {
          'init-model': { kind: 'task', optional: true, command: 'echo "graph database unreachable" >&2; exit 3' },
          'init-plugin': { kind: 'task', command: 'echo plugins loaded', dependsOn: { 'init-model': 'completed' } },
        },
      },
      dir,
    );
    await s.waitState('init-plugin', 'completed');
    const snap = s.sup.snapshot();
    const model = snap.find((u) => u.name === 'init-model')!;
    expect(model.state).toBe('failed');
    expect(model.optional).toBe(true);
    expect(model.reason).toContain('graph database unreachable');
    const table = formatStatusTable(snap, { color: false, now: Date.now() });
    expect(table).toMatch(/warning: optional task init-model failed; nothing waits on it/);
  });

  it('a failed task that is not optional still blocks its dependents', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const s = await run(
      {
        units: {
          migrate: { kind: 'task', command: 'exit 1' },
          after: { kind: 'task', command: 'true', dependsOn: { migrate: 'completed' } },
        },
      },
      dir,
    );
    await s.waitState('migrate', 'failed');
    expect(s.sup.snapshot().find((u) => u.name === 'after')!.state).toBe('pending');
    expect(formatStatusTable(s.sup.snapshot(), { color: false, now: Date.now() })).not.toContain('warning');
  });
});
