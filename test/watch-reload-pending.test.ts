// An edit of a watched file saved just before the config itself changes: the reload replaces
// the file watcher while the unit's burst is still waiting out its quiet time. The edit must
// still restart the unit (a developer's `git checkout` touches both the config and the code).

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { INDEX, downAndRemove, startCli, units, waitForControl, type RunningCli } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';

const FOREVER = `${JSON.stringify(process.execPath)} -e "setInterval(() => {}, 1e9)"`;

let dir: string | undefined;
let cli: RunningCli | undefined;

afterAll(() => downAndRemove(dir, cli), 60_000);

function writeConfig(root: string, aEnv: string): void {
  writeFileSync(
    join(root, 'supervisor.config.ts'),
    `import { defineConfig } from ${JSON.stringify(INDEX)};\n` +
      `export default defineConfig({ units: {
        a: { command: ${JSON.stringify(FOREVER)}, env: { V: '${aEnv}' } },
        w: { command: ${JSON.stringify(FOREVER)}, watch: { paths: ['src/**'], debounce: '4s' } },
      } });\n`,
  );
}

it('a watched file edited within its quiet time, then the config: the reload applies and the unit still restarts for the file', async () => {
  const root = mkdtempSync(join(tmpdir(), 'bksup-watch-reload-'));
  dir = root;
  mkdirSync(join(root, 'src'));
  writeFileSync(join(root, 'src', 'handler.py'), 'x = 1\n');
  writeConfig(root, 'one');
  cli = startCli(root, ['up']);
  await waitForControl(root);
  await waitFor(() => cli!.output().includes('bksup: watching files for w'), { message: 'watches in place', timeout: 30_000 });
  const healthy = async () => {
    const rows = await units(root);
    return rows.length === 2 && rows.every((u) => u.state === 'healthy') ? new Map(rows.map((u) => [u.name, u])) : undefined;
  };
  const before = await waitFor(healthy, { message: 'both healthy', timeout: 30_000 });

  // The code edit first, the config edit right after: the reload (200 ms quiet, then the config is
  // evaluated) lands well inside w's 4 s quiet time.
  writeFileSync(join(root, 'src', 'handler.py'), 'x = 2\n');
  writeConfig(root, 'two');

  await waitFor(() => /config reloaded \(supervisor\.config\.ts changed\): restarted a/.test(cli!.output()), { message: 'the reload applied', timeout: 30_000 });
  const after = await waitFor(
    async () => {
      const w = (await units(root)).find((u) => u.name === 'w');
      return w && w.state === 'healthy' && w.pid !== before.get('w')!.pid ? w : undefined;
    },
    { message: 'w restarted for src/handler.py', timeout: 30_000 },
  );
  expect(after.reason).toContain('src/handler.py changed');
  // Once: the reload left w alone (its settings did not change), the edit restarted it.
  expect(cli.output().match(/^w +\| ● stopping.*$/gm)).toEqual([expect.stringContaining('restarted: src/handler.py changed')]);
}, 90_000);
