// File watch through the real CLI: real files, real processes. An edit restarts exactly the
// units that watch it (dependents too with `cascade`), once per burst, and says why.

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, units, waitForControl, writeConfig, type RunningCli, downAndRemove } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';

const FOREVER = `${JSON.stringify(process.execPath)} -e "setInterval(() => {}, 1e9)"`;

let dir: string;
let cli: RunningCli;

type Row = Awaited<ReturnType<typeof units>>[number] & { since?: number };
const byName = async (): Promise<Map<string, Row>> => new Map((await units(dir)).map((u) => [u.name, u]));

/** Lines of a unit's log that record a stop for a watched change. */
function restartsOf(unit: string): number {
  let text = '';
  try {
    text = readFileSync(join(dir, 'logs', `${unit}.log`), 'utf8');
  } catch {
    return 0;
  }
  return text.split('\n').filter((l) => l.includes('● stopping') && l.includes('restarted:')).length;
}

/** Waits until `unit` runs healthy again with a pid other than `oldPid`. */
async function restartedFrom(unit: string, oldPid: number | null): Promise<Row> {
  return waitFor(async () => {
    const u = (await byName()).get(unit);
    return u && u.state === 'healthy' && u.pid !== oldPid ? u : undefined;
  }, { message: `${unit} healthy with a new pid`, timeout: 30_000 });
}

/**
 * A change to `other` after everything else settled: once it has restarted, every event of the
 * earlier bursts has been dispatched (they were all seen before this one).
 */
async function marker(n: number): Promise<void> {
  const before = (await byName()).get('other')!.pid;
  writeFileSync(join(dir, 'other', 'marker.txt'), String(n));
  await restartedFrom('other', before);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bksup-watch-'));
  mkdirSync(join(dir, 'src', 'app'), { recursive: true });
  mkdirSync(join(dir, 'src', 'node_modules', 'pkg'), { recursive: true });
  mkdirSync(join(dir, 'src', '__pycache__'), { recursive: true });
  mkdirSync(join(dir, 'other'), { recursive: true });
  mkdirSync(join(dir, 'crash'), { recursive: true });
  writeFileSync(join(dir, 'src', 'app', 'nats.py'), 'x = 1\n');
  writeConfig(
    dir,
    `{ units: {
      // A generous quiet time: on a loaded CI machine the test's own 1,500 file operations may
      // pause longer than the default 300 ms, which would rightly count as two bursts.
      base: { command: ${JSON.stringify(FOREVER)}, watch: { paths: ['src/**/*.py'], debounce: '1s', cascade: true } },
      dep: { command: ${JSON.stringify(FOREVER)}, dependsOn: { base: 'healthy' } },
      other: { command: ${JSON.stringify(FOREVER)}, watch: { paths: ['other'], debounce: '300ms' } },
      plain: { command: ${JSON.stringify(FOREVER)} },
      crashy: { command: 'exit 1', restart: { policy: 'always', backoff: { initial: '1h', max: '1h' } }, watch: { paths: ['crash'], debounce: '100ms' } },
    } }`,
  );
  cli = startCli(dir, ['up']);
  await waitForControl(dir);
  await waitFor(() => cli.output().includes('bksup: watching files for base, other, crashy'), { message: 'watches in place', timeout: 30_000 });
  await waitFor(async () => [...(await byName()).values()].every((u) => u.state === (u.name === 'crashy' ? 'backoff' : 'healthy')), { message: 'all healthy, crashy in backoff', timeout: 30_000 });
}, 60_000);

afterAll(() => downAndRemove(dir, cli), 60_000);

describe('watch', () => {
  it('an edit restarts the unit once, its dependents with cascade, and says which file changed', async () => {
    const before = await byName();
    writeFileSync(join(dir, 'src', 'app', 'nats.py'), 'x = 2\n');
    const base = await restartedFrom('base', before.get('base')!.pid);
    expect(base.reason).toBe('restarted: src/app/nats.py changed');
    const dep = await restartedFrom('dep', before.get('dep')!.pid);
    expect(dep.reason).toBe('restarted: src/app/nats.py changed (cascade from base)');
    await marker(1);
    const after = await byName();
    expect(after.get('plain')!.pid).toBe(before.get('plain')!.pid);
    expect(restartsOf('base')).toBe(1);
    expect(restartsOf('dep')).toBe(1);
    const supLog = readFileSync(join(dir, 'logs', 'supervisor.log'), 'utf8');
    expect(supLog).toContain('restarted: src/app/nats.py changed');
    // `bksup status` shows it too.
    const status = await runCli(dir, ['status']);
    expect(status.output).toContain('restarted: src/app/nats.py changed');
  }, 90_000);

  it('a burst of 500 files (write, rename, chmod) is one restart; ignored paths are never one', async () => {
    const before = await byName();
    const baseRestarts = restartsOf('base');
    const depRestarts = restartsOf('dep');
    for (let i = 0; i < 500; i++) {
      const f = join(dir, 'src', 'app', `m${i}.py`);
      // An editor's save: write a temp file, rename it over the target, chmod it.
      writeFileSync(`${f}.tmp`, `v = ${i}\n`);
      renameSync(`${f}.tmp`, f);
      chmodSync(f, 0o644);
    }
    await restartedFrom('base', before.get('base')!.pid);
    await restartedFrom('dep', before.get('dep')!.pid);
    await marker(2);
    expect(restartsOf('base')).toBe(baseRestarts + 1);
    expect(restartsOf('dep')).toBe(depRestarts + 1);
    expect((await byName()).get('base')!.reason).toMatch(/^restarted: src\/app\/m\d+\.py and 499 more changed$/);

    // Default ignores: node_modules, __pycache__, *.pyc never restart anything.
    const settled = await byName();
    writeFileSync(join(dir, 'src', 'node_modules', 'pkg', 'x.py'), 'x\n');
    writeFileSync(join(dir, 'src', '__pycache__', 'nats.cpython-311.pyc'), 'x\n');
    writeFileSync(join(dir, 'src', 'app', 'stray.pyc'), 'x\n');
    await marker(3);
    expect((await byName()).get('base')!.pid).toBe(settled.get('base')!.pid);
    expect(restartsOf('base')).toBe(baseRestarts + 1);
  }, 120_000);

  it('a change during backoff does not add a restart: the coming start runs the new files', async () => {
    const before = (await byName()).get('crashy')!;
    expect(before.state).toBe('backoff');
    writeFileSync(join(dir, 'crash', 'fix.txt'), 'fixed?\n');
    await waitFor(() => readFileSync(join(dir, 'logs', 'supervisor.log'), 'utf8').includes('crashy: crash/fix.txt changed: not restarted, its coming start runs it'), { message: 'the deferred change logged' });
    const after = (await byName()).get('crashy')!;
    expect(after.state).toBe('backoff');
    expect(after.since).toBe(before.since);
    expect(restartsOf('crashy')).toBe(0);
  }, 60_000);
});
