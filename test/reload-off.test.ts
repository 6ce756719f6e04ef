// `reload: false` through the real CLI: edits of the config file, of a file it imports and of an
// env file reload nothing by themselves; `bksup reload` still applies them.
//
// Proving that nothing happened needs a later event that would have followed it. Unit `w` watches
// the same files with a quiet time of 1 s, well over the config watch's 200 ms: once `w` has
// restarted for an edit, an automatic reload of that edit would already have started, and a
// reload runs to its end before the next one. So an explicit `bksup reload` made after that
// restart can only report the edited units as restarted if no automatic reload applied the edit.

import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX, controlFile, runCli, startCli, units, waitForControl, type RunningCli, downAndRemove } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';

const FOREVER = `${JSON.stringify(process.execPath)} -e "setInterval(() => {}, 1e9)"`;

let dir: string;
let cli: RunningCli;

type Row = Awaited<ReturnType<typeof units>>[number];
const byName = async (): Promise<Map<string, Row>> => new Map((await units(dir)).map((u) => [u.name, u]));

/** The last reload's event, `{}` before the first one. */
async function lastReload(): Promise<{ ts?: number; trigger?: string }> {
  const c = controlFile(dir)!;
  const res = await fetch(`http://127.0.0.1:${c.port}/api/reload`, { headers: { authorization: `Bearer ${c.token}` } });
  return (await res.json()) as { ts?: number; trigger?: string };
}

/** The config: `c` reads MODE from extra.ts, `e` reads app.env, `w` watches all three files. */
function writeConfigFile(note: string): void {
  const unit = (extra: string): string => `{ command: ${JSON.stringify(FOREVER)}${extra} }`;
  writeFileSync(
    join(dir, 'supervisor.config.ts'),
    `import { defineConfig } from ${JSON.stringify(INDEX)};\nimport { MODE } from './extra.ts';\n// ${note}\n` +
      `export default defineConfig({ reload: false, units: {
        a: ${unit('')},
        c: ${unit(', env: { MODE }')},
        e: ${unit(", envFile: 'app.env'")},
        w: ${unit(", watch: { paths: ['supervisor.config.ts', 'extra.ts', 'app.env'], debounce: '1s' }")},
      } });\n`,
  );
}

/** Waits until `unit` runs healthy again with a pid other than `oldPid`. */
async function restartedFrom(unit: string, oldPid: number | null | undefined): Promise<Row> {
  return waitFor(async () => {
    const u = (await byName()).get(unit);
    return u && u.state === 'healthy' && u.pid !== oldPid ? u : undefined;
  }, { message: `${unit} healthy with a new pid`, timeout: 30_000 });
}

function envOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bksup-reload-off-'));
  writeFileSync(join(dir, 'extra.ts'), "export const MODE = 'one';\n");
  writeFileSync(join(dir, 'app.env'), 'GREETING=hello\n');
  writeConfigFile('first');
  cli = startCli(dir, ['up']);
  await waitForControl(dir);
  await waitFor(() => cli.output().includes('bksup: watching files for w'), { message: 'watches in place', timeout: 30_000 });
  await waitFor(async () => {
    const m = await byName();
    return m.size === 4 && [...m.values()].every((u) => u.state === 'healthy');
  }, { message: 'all healthy', timeout: 30_000 });
}, 60_000);

afterAll(() => downAndRemove(dir, cli), 60_000);

describe('reload: false', () => {
  it('says nothing about reloading on up', () => {
    expect(cli.output()).not.toContain('bksup: reloading the config when it');
  });

  for (const round of [1, 2]) {
    // Round 2 runs on the config `bksup reload` applied in round 1: still not reloaded by itself.
    it(`edits of the config, an import and an env file do not reload; bksup reload applies them (round ${round})`, async () => {
      const before = await byName();
      const reloadBefore = await lastReload();
      const mode = `mode${round}`;
      writeFileSync(join(dir, 'extra.ts'), `export const MODE = '${mode}';\n`);
      writeFileSync(join(dir, 'app.env'), `GREETING=round${round}\n`);
      writeConfigFile(`edit ${round}`);
      // Either w restarts, or (the bug) a reload happens; a reload re-arms the watches and drops
      // w's pending burst, so waiting for w alone would only time out.
      const seen = await waitFor(async (): Promise<{ reload?: object; w?: Row } | undefined> => {
        const r = await lastReload();
        if (r.ts !== reloadBefore.ts) return { reload: r };
        const u = (await byName()).get('w');
        return u && u.state === 'healthy' && u.pid !== before.get('w')!.pid ? { w: u } : undefined;
      }, { message: 'w restarted for the edits', timeout: 30_000 });
      expect(seen.reload).toBeUndefined();
      const w = seen.w!;
      expect(w.reason).toMatch(/^restarted: (app\.env|extra\.ts|supervisor\.config\.ts) and 2 more changed$/);

      expect(await lastReload()).toEqual(reloadBefore);
      const mid = await byName();
      for (const n of ['a', 'c', 'e']) expect(mid.get(n)!.pid).toBe(before.get(n)!.pid);
      expect(envOf(mid.get('c')!.pid!)).not.toContain(`MODE=${mode}`);

      const cmd = await runCli(dir, ['reload']);
      expect(cmd.code).toBe(0);
      expect(cmd.output).toContain('config reloaded: restarted c, e\n');
      const c = await restartedFrom('c', mid.get('c')!.pid);
      expect(envOf(c.pid!)).toContain(`MODE=${mode}`);
      const e = await restartedFrom('e', mid.get('e')!.pid);
      expect(envOf(e.pid!)).toContain(`GREETING=round${round}`);
      const after = await byName();
      expect(after.get('a')!.pid).toBe(before.get('a')!.pid);
      expect(after.get('w')!.pid).toBe(w.pid);
    }, 60_000);
  }
});
