// dev.sh's `|| true` through the real CLI: an optional init step that fails leaves the next step,
// the app and verify alone, and `bksup status` warns about it.

import { expect, it } from 'vitest';
import { runCli, startCli, waitForControl, writeConfig, type RunningCli } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { cleanupsAfterEach, stopAtCleanup } from './helpers/cleanups.ts';

const cleanups = cleanupsAfterEach();

it('a failed optional task: the next step runs, verify runs and passes, status warns', async () => {
  const dir = tempDir();
  cleanups.push(() => removeDir(dir));
  const port = await freePort();
  const server = `require('http').createServer((q, r) => r.end('{"result":true}')).listen(${port}, '127.0.0.1')`;
  writeConfig(
    dir,
    `{
    units: {
      'init-llm': { kind: 'task', optional: true, command: 'echo "no model endpoint configured" >&2; exit 1' },
      'init-builtin-rules': { kind: 'task', command: 'echo rules loaded', dependsOn: { 'init-llm': 'completed' } },
      web: { command: [${JSON.stringify(process.execPath)}, '-e', ${JSON.stringify(server)}], healthcheck: { http: 'http://127.0.0.1:${port}/', interval: '100ms' } },
    },
    verify: [{ name: 'the page answers', url: 'http://127.0.0.1:${port}/', expect: { result: true } }],
  }`,
  );
  const d: RunningCli = startCli(dir, ['up']);
  stopAtCleanup(cleanups, d);
  await waitForControl(dir);
  await waitFor(() => d.output().includes('verify passed'), { timeout: 30_000, message: `verify passed in:\n${d.output()}` });
  const { code, output } = await runCli(dir, ['status']);
  expect(code).toBe(0);
  expect(output).toMatch(/init-llm\s+task\s+failed .*exited with code 1; last output:\s+no model endpoint configured/);
  expect(output).toMatch(/init-builtin-rules\s+task\s+completed/);
  expect(output).toContain('warning: optional task init-llm failed; nothing waits on it, but what it sets up is missing (bksup logs init-llm)');
});
