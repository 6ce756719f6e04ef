// The demo in a checkout under a private (0700) directory — root's home on Debian, any
// `mktemp -d` — as root: PostgreSQL runs as `postgres` and cannot enter it, so the cluster must
// go somewhere it can reach, with nobody setting anything, and the log must say where.

import { mkdtempSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { blockingDir, choosePgData } from '../examples/bklite-demo/pg-data.ts';
import { startCli, units, waitForControl } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = join(import.meta.dirname, '..');
const PG_SH = join(REPO, 'examples', 'bklite-demo', 'bin', 'pg.sh');
const asRoot = process.getuid?.() === 0;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('the demo under a 0700 directory', () => {
  it('blockingDir finds the directory another account cannot enter', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bksup-private-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const nobody = { uid: 65534, gid: 65534 };
    expect(blockingDir(join(dir, 'data', 'pg'), nobody)).toEqual({ dir, mode: 0o700 });
    expect(blockingDir(join(dir, 'data', 'pg'), { uid: statSync(dir).uid, gid: -1 })).toBeUndefined();
    expect(blockingDir('/usr/lib', nobody)).toBeUndefined();
  });

  it('PostgreSQL comes up healthy with its cluster where it can reach it, and the log says where', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bksup-private-demo-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const choice = choosePgData(join(dir, 'data'), PG_SH);
    if (choice.note) cleanups.push(() => rmSync(join(choice.dir, '..'), { recursive: true, force: true }));
    writeFileSync(
      join(dir, 'supervisor.config.ts'),
      [
        `import { defineConfig } from ${JSON.stringify(join(REPO, 'src', 'index.ts'))};`,
        `import { demoConfig } from ${JSON.stringify(join(REPO, 'examples', 'bklite-demo', 'stack.ts'))};`,
        `export default defineConfig(() => demoConfig({ root: import.meta.dirname, dataDir: 'data', overrides: { POSTGRES_PORT: ${await freePort()} } }));`,
        '',
      ].join('\n'),
    );
    const up = startCli(dir, ['up', 'postgres']);
    cleanups.push(() => up.child.kill('SIGKILL'));
    await waitForControl(dir);
    await waitFor(async () => (await units(dir)).find((u) => u.name === 'postgres' && u.state === 'healthy'), { timeout: 90_000, message: `postgres healthy (${up.output().slice(-2000)})` });
    expect(existsSync(join(choice.dir, 'PG_VERSION'))).toBe(true);
    if (asRoot) {
      // Not under the private directory: somewhere root made for it, said in the log.
      expect(choice.dir).toMatch(/^\/var\/lib\/bk-supervisor\/demo-[0-9a-f]{12}\/pg$/);
      expect(up.output()).toContain(`pg-initdb: ${dir} is mode 0700, so PostgreSQL (running as 'postgres') cannot reach ${join(dir, 'data', 'pg')}; its cluster lives in ${choice.dir} instead`);
      expect(existsSync(join(dir, 'data', 'pg'))).toBe(false);
    } else {
      expect(choice).toEqual({ dir: join(dir, 'data', 'pg') });
    }
    expect(readdirSync(dir)).toContain('supervisor.config.ts');
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
  }, 150_000);
});
