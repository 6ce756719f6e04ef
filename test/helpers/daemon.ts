// Runs the real CLI (`node bin/bksup.js …`) as a child process in a project directory.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../../src/util/proc.ts';
import { waitFor } from './wait.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BKSUP = join(ROOT, 'bin', 'bksup.js');
export const INDEX = join(ROOT, 'src', 'index.ts');

/** Writes supervisor.config.ts into dir; `body` is the object literal passed to defineConfig. */
export function writeConfig(dir: string, body: string): void {
  writeFileSync(join(dir, 'supervisor.config.ts'), `import { defineConfig } from ${JSON.stringify(INDEX)};\nexport default defineConfig(${body});\n`);
}

export interface RunningCli {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

export function startCli(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, [BKSUP, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

export async function runCli(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const c = startCli(dir, args, env);
  const code = await c.exited;
  return { code, output: c.output() };
}

/** A test's teardown: `bksup down` for the daemon `cli` runs (if any), then the project goes. */
export async function downAndRemove(dir: string | undefined, cli: RunningCli | undefined): Promise<void> {
  if (dir && cli) {
    await runCli(dir, ['down']);
    await cli.exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}

export function controlFile(dir: string): { pid: number; port: number; token: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, '.supervisor', 'control.json'), 'utf8')) as { pid: number; port: number; token: string };
  } catch {
    return undefined;
  }
}

export async function waitForControl(dir: string): Promise<{ pid: number; port: number; token: string }> {
  return waitFor(() => controlFile(dir), { message: 'control.json', timeout: 30_000 });
}

export async function units(dir: string): Promise<{ name: string; state: string; pid: number | null; reason: string | null; restarts?: number }[]> {
  const c = controlFile(dir);
  if (!c) throw new Error('no daemon');
  const res = await fetch(`http://127.0.0.1:${c.port}/api/units`, { headers: { authorization: `Bearer ${c.token}` } });
  return (await res.json()) as { name: string; state: string; pid: number | null; reason: string | null; restarts?: number }[];
}

export async function waitAllAlive(pids: number[]): Promise<void> {
  await waitFor(() => pids.every((p) => isAlive(p)));
}
