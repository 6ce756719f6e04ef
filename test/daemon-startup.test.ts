// `bksup up` starts the units before the control API, and reuses what the config evaluated to
// (the config memo) only while everything the evaluation read is unchanged.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { INDEX, runCli, startCli, waitForControl, type RunningCli } from './helpers/daemon.ts';

import { waitFor } from './helpers/wait.ts';
import { isAlive } from '../src/util/proc.ts';
import { cleanupsAfterEach, dirUntilCleanup, stopAtCleanup } from './helpers/cleanups.ts';

const cleanups = cleanupsAfterEach();

const dir = (): string => dirUntilCleanup(cleanups);

function daemon(cwd: string, env: NodeJS.ProcessEnv): RunningCli {
  const d = startCli(cwd, ['up'], env);
  stopAtCleanup(cleanups, d);
  return d;
}

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('bksup up', () => {
  it('cannot listen on its control port: stops the units it already started, says why, exit 1', async () => {
    const project = dir();
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => busy.close(() => r())));
    const port = (busy.address() as net.AddressInfo).port;
    const pidFile = join(project, 'pid');
    writeFileSync(
      join(project, 'supervisor.config.ts'),
      `import { defineConfig } from ${JSON.stringify(INDEX)};\nexport default defineConfig({ control: { port: ${port} }, units: { app: { command: ['/bin/sh', '-c', 'echo $$ > ${pidFile}; exec sleep 600'] } } });\n`,
    );
    const { code, output } = await runCli(project, ['up'], { BKSUP_CACHE_DIR: join(project, 'cache') });
    expect(code).toBe(1);
    expect(output).toContain(`control server cannot listen on 127.0.0.1:${port}`);
    expect(output).toContain('stopping every unit');
    if (existsSync(pidFile)) expect(isAlive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
    expect(existsSync(join(project, '.supervisor', 'control.json'))).toBe(false);
    expect(existsSync(join(project, '.supervisor', 'daemon.lock'))).toBe(false);
  });

  it('evaluates the config once while nothing it read changed; an edited import or another env value is seen', async () => {
    const project = dir();
    const evaluations = join(project, 'evaluations.txt');
    const started = join(project, 'started.txt');
    // The config records each evaluation, reads an env variable and imports a module.
    writeFileSync(join(project, 'units.ts'), `export const word = 'first';\n`);
    writeFileSync(
      join(project, 'supervisor.config.ts'),
      [
        `import { appendFileSync } from 'node:fs';`,
        `import { defineConfig } from ${JSON.stringify(INDEX)};`,
        `import { word } from './units.ts';`,
        `export default defineConfig(() => {`,
        `  appendFileSync(${JSON.stringify(evaluations)}, 'x\\n');`,
        `  process.stderr.write('config says hello\\n');`,
        `  const mode = process.env.STARTUP_MODE ?? 'plain';`,
        `  return { units: { app: { command: ['/bin/sh', '-c', \`echo \${word}-\${mode} >> ${started}; exec sleep 600\`] } } };`,
        `});`,
      ].join('\n'),
    );
    const env = { BKSUP_CACHE_DIR: join(project, 'cache'), STARTUP_MODE: undefined };
    const runOnce = async (extra: NodeJS.ProcessEnv = {}): Promise<string> => {
      const before = lines(started).length;
      const d = daemon(project, { ...env, ...extra });
      await waitFor(() => lines(started).length > before, { message: 'the unit starting', timeout: 60_000 });
      // The units start before the control API listens: `down` needs control.json.
      await waitForControl(project);
      const down = await runCli(project, ['down'], { ...env, ...extra });
      expect(down.code, down.output).toBe(0);
      expect(await d.exited).toBe(0);
      return d.output();
    };

    const first = await runOnce();
    expect(lines(evaluations)).toHaveLength(1);
    expect(first).toContain('config says hello');

    // Unchanged: neither `up` nor the client commands evaluate it again; its output is replayed.
    const second = await runOnce();
    expect(lines(evaluations)).toHaveLength(1);
    expect(second).toContain('config says hello');
    expect(lines(started)).toEqual(['first-plain', 'first-plain']);

    // An env variable the config read, then an imported module, changed: evaluated again.
    await runOnce({ STARTUP_MODE: 'other' });
    expect(lines(started).at(-1)).toBe('first-other');
    writeFileSync(join(project, 'units.ts'), `export const word = 'second';\n`);
    await runOnce();
    expect(lines(started).at(-1)).toBe('second-plain');
    expect(lines(evaluations)).toHaveLength(3);
  });
});
