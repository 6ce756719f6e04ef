// A dotenv file a unit requires with `create`, through the real CLI: `check` only says it will
// be created; `up` creates it before the unit starts (from the template, mode 0600), says so,
// and the unit reads it.

import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runCli, startCli, waitForControl, writeConfig, type RunningCli } from './helpers/daemon.ts';
import { removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { cleanupsAfterEach, stopAtCleanup } from './helpers/cleanups.ts';

const cleanups = cleanupsAfterEach();

it('check says the file will be created; up creates it from the template, says so, and never prints the secret', async () => {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  writeFileSync(join(dir, 'env.example'), 'DB_PORT=\nKEEP=me\n');
  writeConfig(
    dir,
    `{ units: { app: {
      command: '. ./app.env; echo ready on port $DB_PORT; exec sleep 60',
      requires: [{ file: 'app.env', template: 'env.example', create: { DB_PORT: '15432', DB_PASSWORD: 'pw-Secret-9' }, expect: { DB_PORT: '15432' } }],
    } } }`,
  );
  const check = await runCli(dir, ['check']);
  expect(check.output).toContain("app.env is missing: `up` will create it with the stack's values (DB_PORT, DB_PASSWORD)");
  expect(existsSync(join(dir, 'app.env'))).toBe(false);

  const d: RunningCli = startCli(dir, ['up']);
  stopAtCleanup(cleanups, d);
  await waitForControl(dir);
  await waitFor(() => d.output().includes('ready on port 15432'), { timeout: 30_000, message: `app ready in:\n${d.output()}` });
  expect(d.output()).toContain("bksup: preflight: created app.env from env.example with the stack's values (DB_PORT, DB_PASSWORD)");
  expect(readFileSync(join(dir, 'app.env'), 'utf8')).toBe('DB_PORT=15432\nKEEP=me\n\n# added by bk-supervisor: the dev stack it runs\nDB_PASSWORD=pw-Secret-9\n');
  expect(statSync(join(dir, 'app.env')).mode & 0o777).toBe(0o600);
  expect(d.output()).not.toContain('pw-Secret-9');
});
