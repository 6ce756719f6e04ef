// A command string of plain words is exec'd as its argv instead of through `/bin/sh -c`: Debian's
// dash does not exec the last command of `-c`, so the shell stayed as the unit's process with the
// program as its child. What users rely on: the same program, arguments, env and cwd either way;
// anything with shell syntax still goes through the shell; and, with plain words, the unit's pid
// is the program (signals reach it, a crash by a signal is reported as that signal).

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseArgv } from '../src/units/child.ts';
import { readStat } from '../src/util/proc.ts';
import { startStack } from './helpers/stack.ts';
import { cleanupsAfterEach, dirUntilCleanup } from './helpers/cleanups.ts';
import { waitFor } from './helpers/wait.ts';

const cleanups = cleanupsAfterEach();

describe('which command strings skip the shell', () => {
  it.each([
    ['sleep 100', ['sleep', '100']],
    ['  uv run python manage.py nats_listener  ', ['uv', 'run', 'python', 'manage.py', 'nats_listener']],
    ['pnpm dev --port 3011', ['pnpm', 'dev', '--port', '3011']],
    ['./bin/server --listen=127.0.0.1:80 -v', ['./bin/server', '--listen=127.0.0.1:80', '-v']],
  ])('%j is exec’d as %j', (command, argv) => {
    expect(baseArgv(command)).toEqual(argv);
  });

  it.each([
    'FOO=1 node app.js', // an assignment first
    'exec node app.js',
    'umask 022 && exec redis-server',
    'cd web && pnpm dev',
    'node app.js > out.log',
    'echo $HOME',
    'ls *.py',
    'cat ~/.profile',
    "echo 'a b'",
    'node app.js # comment',
    'a | b',
    'sleep 1; sleep 2',
    'node\napp.js',
    '',
  ])('%j goes through /bin/sh -c', (command) => {
    expect(baseArgv(command)).toEqual(['/bin/sh', '-c', command]);
  });

  it('an array is argv as given', () => {
    expect(baseArgv(['sh', '-c', 'a && b'])).toEqual(['sh', '-c', 'a && b']);
  });
});

describe('a unit with a plain command string', () => {
  it('runs the program itself as the unit’s pid, with its arguments, env and cwd; a crash by a signal is reported as the signal', async () => {
    const dir = dirUntilCleanup(cleanups);
    const script = join(dir, 'show.sh');
    writeFileSync(script, 'echo "args=$* cwd=$(pwd) greeting=$GREETING"; exec sleep 1000\n');
    const stack = await startStack({
      root: dir,
      units: { app: { command: `sh ${script} one two`, env: { GREETING: 'hello' }, restart: { policy: 'never' } } },
    });
    cleanups.push(() => stack.stop());
    await stack.waitState('app', 'healthy');
    const pid = stack.sup.unit('app')!.snapshot().pid!;
    // The unit's own pid runs the script, then becomes sleep: no shell between the daemon and it.
    await waitFor(() => readStat(pid)?.comm === 'sleep', { message: 'the unit’s pid became sleep' });
    expect(readStat(pid)?.ppid).toBe(process.pid);
    const log = join(stack.config.logs.dir, 'app.log');
    await waitFor(
      () => {
        stack.files.flushSync();
        return readFileSync(log, 'utf8').includes(`args=one two cwd=${dir} greeting=hello`);
      },
      { message: 'the script’s line in logs/app.log' },
    );
    process.kill(pid, 'SIGSEGV');
    const ended = await stack.waitState('app', ['failed', 'stopped']);
    expect(ended.signal).toBe('SIGSEGV');
  });
});
