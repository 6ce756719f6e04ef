// Preflight: the `uv` trap (installed into ~/.local/bin, which is often not on PATH) and
// missing programs, through the real CLI.

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, units, waitForControl, writeConfig } from './helpers/daemon.ts';
import { removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

function setup(): { dir: string; home: string } {
  const dir = tempDir();
  const home = tempDir('bksup-home-');
  dirs.push(dir, home);
  mkdirSync(join(home, '.local', 'bin'), { recursive: true });
  const uv = join(home, '.local', 'bin', 'uv');
  writeFileSync(uv, '#!/bin/sh\necho "uv stand-in: $*"\nexec sleep 1000\n');
  chmodSync(uv, 0o755);
  return { dir, home };
}

// PATH without any home directory: what an IDE terminal or a service often gets.
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

describe('bksup check', () => {
  it('finds uv in ~/.local/bin when it is not on PATH, and says it will be used', async () => {
    const { dir, home } = setup();
    writeConfig(dir, `{ units: { server: { command: 'uv run python manage.py runserver' } } }`);
    const { code, output } = await runCli(dir, ['check'], { HOME: home, PATH });
    expect(output).toContain(`server: found its program in ${join(home, '.local', 'bin')}, which is not on PATH`);
    expect(output).toContain('preflight: all checks passed');
    expect(code).toBe(0);
  });

  it('names the unit and the fix for a program that is nowhere', async () => {
    const { dir, home } = setup();
    writeConfig(dir, `{ units: { web: { command: 'pnpm-that-does-not-exist dev' }, server: { command: 'uv run x' } } }`);
    const { code, output } = await runCli(dir, ['check'], { HOME: home, PATH });
    expect(code).toBe(1);
    expect(output).toContain('web: program "pnpm-that-does-not-exist" not found on PATH nor in ~/.local/bin or ~/.cargo/bin');
    expect(output).not.toMatch(/server: program/);
  });

  it('leaves a command that starts with a shell builtin to the shell (the demo redis: umask … && exec redis-server)', async () => {
    const { dir, home } = setup();
    writeConfig(dir, `{ units: { redis: { command: 'umask 022 && mkdir -p d && exec sleep 1' }, a: { command: 'cd /tmp && sleep 1' }, b: { command: '. ./env.sh; sleep 1' } } }`);
    const { code, output } = await runCli(dir, ['check'], { HOME: home, PATH });
    expect(output).not.toMatch(/program "/);
    expect(output).toContain('preflight: all checks passed');
    expect(code).toBe(0);
  });

  it('names a missing required file with its unit and the fix', async () => {
    const { dir, home } = setup();
    mkdirSync(join(dir, 'server'));
    writeConfig(dir, `{ units: { server: { command: 'uv run x', cwd: 'server', requires: [{ file: 'server/.env', hint: 'cp server/.env.example server/.env' }] } } }`);
    const { code, output } = await runCli(dir, ['check'], { HOME: home, PATH });
    expect(code).toBe(1);
    expect(output).toContain(`server: ${join(dir, 'server', '.env')} is missing (cp server/.env.example server/.env)`);
    writeFileSync(join(dir, 'server', '.env'), 'DEBUG=1\n');
    expect((await runCli(dir, ['check'], { HOME: home, PATH })).code).toBe(0);
  });

  it('masks what the daemon masks: an inherited secret the config put into a command, a URL password in env', async () => {
    const { dir, home } = setup();
    // `--token VALUE` (a space, not `=`) is not caught by the text patterns: only knowing the
    // inherited secret's value masks it.
    writeConfig(
      dir,
      `{ units: {
        a: { command: \`sh -c 'tool --token \${process.env.MY_API_TOKEN}'\` },
        b: { command: 'sleep 1', env: { REDIS_URL: 'redis://u:url-pass-4711@127.0.0.1:1' } },
        c: { command: \`missing-tool-\${process.env.MY_API_TOKEN}\` },
      } }`,
    );
    const { code, output } = await runCli(dir, ['check'], { HOME: home, PATH, MY_API_TOKEN: 'tok-very-secret-9' });
    expect(code).toBe(1);
    expect(output).toContain("a: sh -c 'tool --token ***' (in .)");
    expect(output).toContain('c: program "missing-tool-***" not found');
    expect(output).not.toContain('tok-very-secret-9');
    expect(output).not.toContain('url-pass-4711');
  });

  it('check --no-preflight only validates and prints the graph', async () => {
    const { dir, home } = setup();
    writeConfig(dir, `{ units: { a: { command: 'nope-nope' }, b: { command: 'nope', dependsOn: { a: 'healthy' } } } }`);
    const { code, output } = await runCli(dir, ['check', '--no-preflight'], { HOME: home, PATH });
    expect(code).toBe(0);
    expect(output).toContain('b (process) <- a:healthy');
  });
});

describe('bksup up with uv only in ~/.local/bin', () => {
  it('starts the unit with the program from ~/.local/bin', async () => {
    const { dir, home } = setup();
    writeConfig(dir, `{ units: { server: { command: 'uv run python manage.py nats_listener' } } }`);
    const d = startCli(dir, ['up'], { HOME: home, PATH });
    try {
      await waitForControl(dir);
      await waitFor(() => d.output().includes('uv stand-in: run python manage.py nats_listener'));
      expect((await units(dir))[0]!.state).toBe('healthy');
    } finally {
      d.child.kill('SIGTERM');
      expect(await d.exited).toBe(0);
    }
  });
});
