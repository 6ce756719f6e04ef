// Client commands find the daemon where `up` put it: under the config's root, however the config
// was named (--config, $SUPERVISOR_CONFIG, -C, or the repository's own supervisor.config.ts
// choosing a BK-Lite checkout through BKLITE_ROOT), from any directory.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli, startCli, writeConfig, type RunningCli } from './helpers/daemon.ts';
import { FIXTURES } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';
import { cleanupsAfterEach, dirUntilCleanup, stopAtCleanup } from './helpers/cleanups.ts';

const cleanups = cleanupsAfterEach();

const dir = (): string => dirUntilCleanup(cleanups);

function daemon(cwd: string, args: string[], env: NodeJS.ProcessEnv): RunningCli {
  const d = startCli(cwd, args, env);
  stopAtCleanup(cleanups, d);
  return d;
}

const controlJson = (root: string): string => join(root, '.supervisor', 'control.json');

async function started(d: RunningCli, root: string): Promise<void> {
  await waitFor(
    () => {
      if (d.child.exitCode !== null) throw new Error(`bksup up exited: ${d.output()}`);
      return existsSync(controlJson(root));
    },
    { message: `${controlJson(root)}`, timeout: 60_000 },
  );
}

// Nothing from the test runner's environment decides where a config is or what it evaluates to.
const clean = { SUPERVISOR_CONFIG: undefined, BKLITE_ROOT: undefined };

describe('client commands find the daemon where up put it', () => {
  it('--config, $SUPERVISOR_CONFIG and -C, from other directories, with a root away from the config', async () => {
    const base = dir();
    const confDir = join(base, 'conf');
    const root = join(base, 'project');
    mkdirSync(confDir);
    mkdirSync(root);
    writeConfig(confDir, `{ root: '../project', units: { app: { command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(join(FIXTURES, 'forever.mjs'))}] } } }`);
    const file = join(confDir, 'supervisor.config.ts');
    const cache = join(base, 'cache');
    const env = { ...clean, BKSUP_CACHE_DIR: cache };
    const elsewhere = dir();
    const other = dir();

    const d = daemon(elsewhere, ['up', '--config', file], env);
    await started(d, root);
    expect(existsSync(controlJson(confDir))).toBe(false);

    const byFlag = await runCli(other, ['--config', file, 'status'], env);
    expect(byFlag.code, byFlag.output).toBe(0);
    expect(byFlag.output).toMatch(/^app\s+process\s+(starting|running|healthy)/m);

    const byEnv = await runCli(other, ['status', '--json'], { ...env, SUPERVISOR_CONFIG: file });
    expect(byEnv.code, byEnv.output).toBe(0);
    expect((JSON.parse(byEnv.output) as { name: string }[]).map((u) => u.name)).toEqual(['app']);

    const byDir = await runCli(other, ['-C', confDir, 'restart', 'app'], env);
    expect(byDir.code, byDir.output).toBe(0);
    expect(byDir.output).toContain('restart app');

    // From a directory below the config's, as git or npm would: the nearest config above.
    mkdirSync(join(confDir, 'deep', 'er'), { recursive: true });
    const below = await runCli(join(confDir, 'deep', 'er'), ['status'], env);
    expect(below.code, below.output).toBe(0);
    expect(below.output).toMatch(/^app\s+process\s+/m);

    // A client whose memo is empty evaluates the config itself, and finds the same place.
    const cold = await runCli(other, ['--config', file, 'logs', '-n', '5', 'app'], { ...env, BKSUP_CACHE_DIR: join(base, 'cold') });
    expect(cold.code, cold.output).toBe(0);
    expect(cold.output).toMatch(/app \| /);

    // The long forms and the full command line (commander) agree with the fast path.
    const viaCommander = await runCli(other, ['status', '--config', file], env);
    expect(viaCommander.code, viaCommander.output).toBe(0);

    // Without a config, a client says where it looked and why.
    const none = await runCli(other, ['status'], env);
    expect(none.code).toBe(1);
    expect(none.output).toContain(`no supervisor is running in ${other} (looked for .supervisor/control.json there: no supervisor.config.ts is there or above it either`);

    const down = await runCli(other, ['down'], { ...env, SUPERVISOR_CONFIG: file });
    expect(down.code, down.output).toBe(0);
    expect(await d.exited).toBe(0);

    const after = await runCli(other, ['--config', file, 'status'], env);
    expect(after.code).toBe(1);
    expect(after.output).toContain(`no supervisor is running in ${root} (looked for .supervisor/control.json there: the root of ${file} (from --config))`);
  });

  it('names the variables the config read to place the daemon, never a secret among them', async () => {
    const root = dir();
    writeFileSync(
      join(root, 'supervisor.config.ts'),
      `const _ = [process.env.DB_PASSWORD, process.env.STACK_DSN, process.env.STACK_NAME];\nexport default { units: { a: { command: 'sleep 1' } } };\n`,
    );
    const env = { ...clean, BKSUP_CACHE_DIR: join(dir(), 'cache'), DB_PASSWORD: 'pw-top-secret-1', STACK_DSN: 'postgres://u:dsn-secret-2@127.0.0.1/db', STACK_NAME: 'demo' };
    const r = await runCli(root, ['status'], env);
    expect(r.code).toBe(1);
    expect(r.output).toContain('evaluated with DB_PASSWORD=*** STACK_DSN=postgres://u:***@127.0.0.1/db STACK_NAME=demo');
    expect(r.output).not.toMatch(/pw-top-secret-1|dsn-secret-2/);

    // A config that copies the whole environment: a few variables, the count of the rest, no PATH.
    writeFileSync(join(root, 'supervisor.config.ts'), `const env = { ...process.env };\nexport default { units: { a: { command: 'sleep 1', env } } };\n`);
    const copied = await runCli(root, ['status'], env);
    expect(copied.output).toMatch(/, evaluated with (\S+=\S+ ){4}and \d+ more variables\)/);
    expect(copied.output).not.toMatch(/[\s(](PATH|HOME)=|pw-top-secret-1|dsn-secret-2/);
  });

  it("BKLITE_ROOT through the repository's supervisor.config.ts: the checkout's .supervisor, also for a terminal without BKLITE_ROOT", async () => {
    // A BK-Lite-shaped checkout; with no docker, uv or pnpm on PATH every unit fails or waits,
    // and the daemon keeps running: enough to be found.
    const checkout = dir();
    writeFileSync(join(checkout, 'docker-compose.dev.yml'), 'services: {}\n');
    mkdirSync(join(checkout, 'server'));
    mkdirSync(join(checkout, 'web'));
    const noTools = dir();
    const cache = join(dir(), 'cache');
    const env = { ...clean, BKSUP_CACHE_DIR: cache, PATH: noTools, BKLITE_ROOT: checkout };

    const before = await runCli(ROOT, ['status'], env);
    expect(before.code).toBe(1);
    expect(before.output).toContain(`no supervisor is running in ${checkout} (looked for .supervisor/control.json there: the root of ${join(ROOT, 'supervisor.config.ts')} (found in the project directory, evaluated with BKLITE_ROOT=${checkout}))`);

    const d = daemon(ROOT, ['up'], env);
    await started(d, checkout);
    expect(d.output()).toContain(`BK-Lite checkout ${checkout}: running the real stack`);

    const status = await runCli(ROOT, ['status'], env);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toMatch(/^postgres\s+compose\s+/m);

    const fromElsewhere = await runCli(dir(), ['--config', join(ROOT, 'supervisor.config.ts'), 'status', '--json'], env);
    expect(fromElsewhere.code, fromElsewhere.output).toBe(0);

    // The README's second terminal, without BKLITE_ROOT: the only supervisor of this config.
    const plain = await runCli(ROOT, ['status'], { ...env, BKLITE_ROOT: undefined });
    expect(plain.code, plain.output).toBe(0);
    expect(plain.output).toMatch(/^postgres\s+compose\s+/m);
    expect(plain.output).toContain(`no supervisor runs in ${ROOT}; this is the only one of ${join(ROOT, 'supervisor.config.ts')}, in ${checkout}`);

    // `bksup` on PATH, run inside the checkout: bk-supervisor's own config, the same daemon.
    const inside = await runCli(join(checkout, 'server'), ['status'], { ...env, BKLITE_ROOT: undefined });
    expect(inside.code, inside.output).toBe(0);
    expect(inside.output).toMatch(/^postgres\s+compose\s+/m);

    const token = (JSON.parse(readFileSync(controlJson(checkout), 'utf8')) as { token: string }).token;
    expect(status.output + plain.output).not.toContain(token);

    const down = await runCli(ROOT, ['down'], env);
    expect(down.code, down.output).toBe(0);
    expect(await d.exited).toBe(0);
    expect(existsSync(controlJson(checkout))).toBe(false);
  });
});
