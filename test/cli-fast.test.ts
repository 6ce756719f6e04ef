// The fast path of the command line and the config memo's dependency recording, in-process.

import fs, { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseFast } from '../src/client/fast.ts';
import { depsHold, startRecording } from '../src/config/deps.ts';
import { removeDir, tempDir } from './helpers/stack.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

describe('parseFast', () => {
  const parse = (...argv: string[]): { name: string; dir: string; config?: string; units: string[]; flags: string[]; values: Record<string, string> } | undefined => {
    const p = parseFast(argv, '/cwd');
    if (!p) return undefined;
    return { name: p.name, dir: p.args.dir, ...(p.args.config !== undefined ? { config: p.args.config } : {}), units: p.args.units, flags: [...p.args.flags], values: Object.fromEntries(p.args.values) };
  };

  it('takes the plain forms of the common commands, global options before or after the command', () => {
    expect(parse('status')).toEqual({ name: 'status', dir: '/cwd', units: [], flags: [], values: {} });
    expect(parse('-C', '/p', 'status', '--json')).toEqual({ name: 'status', dir: '/p', units: [], flags: ['json'], values: {} });
    expect(parse('status', '--config', '/x/c.ts')).toEqual({ name: 'status', dir: '/cwd', config: '/x/c.ts', units: [], flags: [], values: {} });
    expect(parse('logs', '-f', '-n', '5', 'server', 'web')).toEqual({ name: 'logs', dir: '/cwd', units: ['server', 'web'], flags: ['follow'], values: { lines: '5' } });
    expect(parse('restart', 'web')?.units).toEqual(['web']);
    expect(parse('up', '--no-color', 'web')).toEqual({ name: 'up', dir: '/cwd', units: ['web'], flags: ['no-color'], values: {} });
  });

  it('leaves everything else to the full command line (commander)', () => {
    for (const argv of [
      [],
      ['--help'],
      ['status', '--help'],
      ['status', '-h'],
      ['status', 'extra'],
      ['status', '--json=1'],
      ['--config=/x', 'status'],
      ['logs', '-n'],
      ['logs', '-fn', '3'],
      ['restart'],
      ['up', '--rerun', 'db-init'],
      ['check'],
      ['verify'],
      ['attach', 'server'],
      ['-C'],
      ['-C', '--json', 'status'],
      ['--version'],
      ['toString'],
    ]) {
      expect(parseFast(argv, '/cwd'), argv.join(' ')).toBeUndefined();
    }
  });
});

describe('config memo dependencies', () => {
  it('records what code read (env, paths probed, files) and notices each change', () => {
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    const file = join(dir, 'settings.txt');
    writeFileSync(file, 'one');
    const marker = join(dir, 'checkout', 'docker-compose.dev.yml');
    const env: NodeJS.ProcessEnv = { ...process.env, MEMO_TEST_VAR: 'a' };
    const saved = process.env;
    process.env = env;
    let deps;
    try {
      const rec = startRecording({ ignoreOwnScript: false });
      // What a config does: an env variable, a probe for a file that is not there, a file read.
      void process.env.MEMO_TEST_VAR;
      void statSync(marker, { throwIfNoEntry: false });
      void fs.readFileSync(file, 'utf8');
      deps = rec.stop();
    } finally {
      process.env = saved;
    }
    expect(deps.map((d) => d.kind).sort()).toEqual(['env', 'file', 'stat']);
    expect(depsHold(deps, env)).toBe(true);
    expect(depsHold(deps, { ...env, MEMO_TEST_VAR: 'b' })).toBe(false);
    expect(depsHold(deps, { ...env, UNRELATED: 'x' })).toBe(true);
    writeFileSync(file, 'two');
    expect(depsHold(deps, env)).toBe(false);
    writeFileSync(file, 'one');
    expect(depsHold(deps, env)).toBe(true);
    mkdirSync(join(dir, 'checkout'));
    writeFileSync(marker, 'services: {}\n');
    expect(depsHold(deps, env)).toBe(false);
  });
});

