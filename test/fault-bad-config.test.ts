// Fault injection: every broken config of the corpus (test/fixtures/bad-configs/) through the
// real CLI. `bksup up` must print the expected message, exit 2 and start nothing: no
// .supervisor/, no logs/, no process. Two witnesses for "no process": a marker unit injected
// into the config (it would `touch` a file), and a PATH whose first directory holds stand-ins
// for every program the corpus names (they would append to a spawn log; they also keep
// `rm -rf /` of the `..` case from ever reaching the real rm). And a bad `up` in a directory a
// daemon already supervises must leave that daemon exactly as it was.

import { chmodSync, existsSync, readFileSync, rmSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, writeConfig } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';
import { Cleanups, TreeWatch, newRun, readControl, treeCommand } from './fixtures/fault/harness.ts';

const CORPUS = fileURLToPath(new URL('./fixtures/bad-configs/', import.meta.url));
const CASES = readdirSync(CORPUS)
  .filter((f) => /\.config\.ts(\.txt)?$/.test(f))
  .sort()
  .map((file) => ({ file, expected: readFileSync(join(CORPUS, file.replace(/\.config\.ts(\.txt)?$/, '.expected.txt')), 'utf8').trim() }));
const PROGRAMS = ['pnpm', 'uvicorn', 'node', 'uv', 'python', 'a', 'b', 'c', 'x', 'migrate', 'rm', 'docker', 'docker-compose'];
const MARKER_FILE = 'fault-marker-started';
const CONCURRENCY = 3;

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** A PATH directory of stand-ins that log their own start to $FAULT_SPAWN_LOG. */
function standIns(): { path: string; log: string } {
  const bin = cleanups.project('bksup-fault-bin-');
  for (const p of PROGRAMS) {
    const f = join(bin, p);
    writeFileSync(f, '#!/bin/sh\necho "$(basename "$0") $*" >> "$FAULT_SPAWN_LOG"\n');
    chmodSync(f, 0o755);
  }
  return { path: `${bin}:${process.env.PATH ?? ''}`, log: join(bin, 'spawned.log') };
}

/** The case's config, with a marker unit added where that cannot change the expected message. */
function withMarker(text: string, expected: string): { text: string; marked: boolean } {
  const at = text.indexOf('units: {');
  if (at < 0 || expected.includes('(known:')) return { text, marked: false };
  const cut = at + 'units: {'.length;
  return { text: `${text.slice(0, cut)} fault_marker: { command: 'touch ${MARKER_FILE}' },${text.slice(cut)}`, marked: true };
}

async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

describe('fault injection: the bad-config corpus through the real CLI', () => {
  it(`every case: its message, exit 2, nothing started (${CASES.length} cases, ${CONCURRENCY} at a time)`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    const bin = standIns();

    // The witnesses work: a valid config with the same marker unit and a stand-in program
    // leaves both traces.
    const control = cleanups.project('bksup-fault-good-');
    const good = withMarker(`export default { units: { web: { command: 'pnpm dev', restart: { policy: 'never' } } } };`, '');
    expect(good.marked).toBe(true);
    writeFileSync(join(control, 'supervisor.config.ts'), good.text);
    const d = cleanups.daemon(control, ['up'], { PATH: bin.path, FAULT_SPAWN_LOG: bin.log });
    // The stand-in's `>>` creates the file before echo writes its line: wait for the whole line.
    await waitFor(() => existsSync(join(control, MARKER_FILE)) && existsSync(bin.log) && readFileSync(bin.log, 'utf8').endsWith('\n'), {
      timeout: 60_000,
      message: 'marker and stand-in traces of a valid config',
    });
    expect(readFileSync(bin.log, 'utf8')).toBe('pnpm dev\n');
    expect(await d.signal('SIGTERM')).toBe(0);
    rmSync(bin.log);
    const t0 = Date.now();
    const results = await pool(CASES, CONCURRENCY, async ({ file, expected }) => {
      const dir = cleanups.project('bksup-fault-bad-');
      const { text, marked } = withMarker(readFileSync(join(CORPUS, file), 'utf8'), expected);
      writeFileSync(join(dir, 'supervisor.config.ts'), text);
      const started = Date.now();
      const r = await runCli(dir, ['up'], { PATH: bin.path, FAULT_SPAWN_LOG: bin.log });
      return { file, expected, marked, dir, ms: Date.now() - started, ...r };
    });
    const totalMs = Date.now() - t0;
    for (const r of results) {
      expect(r.output, r.file).toContain(r.expected);
      expect(r.output, r.file).toContain('the config is not valid, nothing was started');
      expect(r.code, `${r.file}: ${r.output}`).toBe(2);
      // Nothing was created: no state dir (lock, control.json, state.json), no logs, no marker.
      expect(readdirSync(r.dir), r.file).toEqual(['supervisor.config.ts']);
    }
    expect(existsSync(bin.log), existsSync(bin.log) ? readFileSync(bin.log, 'utf8') : '').toBe(false);
    const marked = results.filter((r) => r.marked).length;
    const times = results.map((r) => r.ms).sort((a, b) => a - b);
    console.log(
      `[fault-bad-config] ${results.length} bad configs through \`bksup up\` in ${totalMs} ms (${CONCURRENCY} at a time; per run median ${times[Math.floor(times.length / 2)]} ms, max ${times[times.length - 1]} ms); ` +
        `all exit 2 with their message; ${marked} carried a marker unit, none ran; 0 stand-in programs started`,
    );
  }, 300_000);

  it('a bad config in a directory a daemon supervises leaves that daemon untouched', async () => {
    const run = newRun();
    const dir = cleanups.project();
    writeConfig(dir, `{ units: { app: { command: ${treeCommand(run, 'app')}, healthcheck: { log: '^ready ', interval: '100ms' } } } }`);
    const good = readFileSync(join(dir, 'supervisor.config.ts'), 'utf8');
    const watch = cleanups.watch(run);
    const d = cleanups.daemon(dir);
    const ctl = await d.control();
    const before = (await d.allHealthy(['app'])).get('app')!;
    const tree = watch.scan();
    expect(TreeWatch.whole(tree, ['app'])).toBe(true);
    const grandchild = TreeWatch.pids(tree, 'app', 'grandchild');
    const controlText = readFileSync(join(dir, '.supervisor', 'control.json'), 'utf8');
    const lockText = readFileSync(join(dir, '.supervisor', 'daemon.lock'), 'utf8');
    const stateText = readFileSync(join(dir, '.supervisor', 'state.json'), 'utf8');
    const bin = standIns();

    // A spread of the corpus: graph errors, load errors, value errors, a throwing function.
    const picks = CASES.filter((c) => /^(01|02|04|16|21|24|32|34)-/.test(c.file));
    expect(picks.length).toBe(8);
    const t0 = Date.now();
    for (const c of picks) {
      const { text } = withMarker(readFileSync(join(CORPUS, c.file), 'utf8'), c.expected);
      writeFileSync(join(dir, 'supervisor.config.ts'), text);
      const r = await runCli(dir, ['up'], { PATH: bin.path, FAULT_SPAWN_LOG: bin.log });
      expect(r.code, `${c.file}: ${r.output}`).toBe(2);
      expect(r.output, c.file).toContain(c.expected);
      expect(d.running, c.file).toBe(true);
      expect(readControl(dir)?.pid, c.file).toBe(ctl.pid);
      expect(readFileSync(join(dir, '.supervisor', 'control.json'), 'utf8'), c.file).toBe(controlText);
      expect(readFileSync(join(dir, '.supervisor', 'daemon.lock'), 'utf8'), c.file).toBe(lockText);
      expect(readFileSync(join(dir, '.supervisor', 'state.json'), 'utf8'), c.file).toBe(stateText);
      const app = await d.unit('app');
      expect(app.state, c.file).toBe('healthy');
      expect(app.pid, c.file).toBe(before.pid);
      const now = watch.scan();
      expect(TreeWatch.pids(now, 'app', 'parent'), c.file).toEqual([before.pid]);
      expect(TreeWatch.pids(now, 'app', 'grandchild'), c.file).toEqual(grandchild);
      expect(existsSync(join(dir, MARKER_FILE)), c.file).toBe(false);
    }
    const ms = Date.now() - t0;
    expect(existsSync(bin.log)).toBe(false);
    expect(watch.duplicates).toEqual([]);
    expect(d.output()).not.toMatch(/stopped a leftover|● stopping/);

    writeFileSync(join(dir, 'supervisor.config.ts'), good);
    expect(await d.signal('SIGTERM')).toBe(0);
    expect(watch.stillAlive()).toEqual([]);
    console.log(`[fault-bad-config] ${picks.length} bad \`up\`s beside a running daemon in ${ms} ms: daemon pid, control.json, lock, state.json, unit pid and tree unchanged`);
  }, 240_000);
});
