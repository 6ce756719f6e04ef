// bin/bksup, the launcher users run (npm scripts, the package's bin): the daemon gets its
// memory settings, the children get the environment they would have had without them.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ROOT, waitForControl, writeConfig } from './helpers/daemon.ts';
import { removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

const LAUNCHER = join(ROOT, 'bin', 'bksup');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function upWithEnvPrinter(env: NodeJS.ProcessEnv): Promise<{ daemonArgs: string[]; daemonEnv: string[]; childEnv: string[] }> {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  writeConfig(dir, `{ control: { port: 0 }, units: { printer: { command: 'env; echo ENV-DONE', restart: { policy: 'never' } } } }`);
  const child = spawn(LAUNCHER, ['up', '--no-color'], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const control = await waitForControl(dir);
  // exec: the launcher's pid is the daemon's own, no shell left in between.
  expect(control.pid).toBe(child.pid);
  const log = join(dir, 'logs', 'printer.log');
  const text = await waitFor(() => {
    try {
      const t = readFileSync(log, 'utf8');
      return t.includes('ENV-DONE') ? t : undefined;
    } catch {
      return undefined;
    }
  }, { message: 'the printer unit wrote its environment' });
  const proc = (f: string): string[] => readFileSync(`/proc/${control.pid}/${f}`, 'utf8').split('\0');
  return {
    daemonArgs: proc('cmdline'),
    daemonEnv: proc('environ'),
    childEnv: text.split('\n').map((l) => l.replace(/^\S+ stdout \d+ /, '')),
  };
}

it('starts the daemon with a small young generation and the mmap threshold, and the children do not inherit it', async () => {
  const { daemonArgs, daemonEnv, childEnv } = await upWithEnvPrinter({ MALLOC_MMAP_THRESHOLD_: undefined, BKSUP_UNSET_ENV: undefined });
  expect(daemonArgs).toContain('--max-semi-space-size=1');
  expect(daemonEnv).toContain('MALLOC_MMAP_THRESHOLD_=65536');
  expect(childEnv.filter((l) => l.startsWith('MALLOC_') || l.startsWith('BKSUP_UNSET_ENV'))).toEqual([]);
  expect(childEnv).toContain('NO_COLOR=1'); // the rest of the environment still arrives
});

it('keeps a MALLOC_MMAP_THRESHOLD_ the user set, for the daemon and the children', async () => {
  const { daemonEnv, childEnv } = await upWithEnvPrinter({ MALLOC_MMAP_THRESHOLD_: '131072', BKSUP_UNSET_ENV: undefined });
  expect(daemonEnv).toContain('MALLOC_MMAP_THRESHOLD_=131072');
  expect(childEnv).toContain('MALLOC_MMAP_THRESHOLD_=131072');
});
