// Runs a real Supervisor in-process over a temp directory: real children, real log files,
// real state.json. Tests read its state events and wait on them with deadlines.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/validate.ts';
import type { ResolvedConfig, UserConfig } from '../../src/config/types.ts';
import { EventBus, type StateEvent, type UnitStateName } from '../../src/events.ts';
import { LogFiles } from '../../src/logs/files.ts';
import { StateStore } from '../../src/state-store.ts';
import { Supervisor } from '../../src/supervisor.ts';
import { waitFor } from './wait.ts';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'bin');
export const NODE = process.execPath;

export function fixture(name: string, ...args: (string | number)[]): string[] {
  return [NODE, join(FIXTURES, name), ...args.map(String)];
}

export function tempDir(prefix = 'bksup-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Stack {
  dir: string;
  config: ResolvedConfig;
  sup: Supervisor;
  bus: EventBus;
  events: StateEvent[];
  files: LogFiles;
  waitState(unit: string, state: UnitStateName | UnitStateName[], timeout?: number): Promise<StateEvent>;
  statesOf(unit: string): UnitStateName[];
  stop(): Promise<void>;
}

export async function resolveOrThrow(user: UserConfig, dir: string): Promise<ResolvedConfig> {
  const res = await resolveConfig({ root: dir, ...user }, { file: join(dir, 'supervisor.config.ts'), cwd: dir });
  if (!res.ok) throw new Error(`config invalid:\n${res.errors.join('\n')}`);
  return res.config;
}

export async function startStack(user: UserConfig, opts: { dir?: string; rerun?: string[]; only?: string[] } = {}): Promise<Stack> {
  const dir = opts.dir ?? tempDir();
  const config = await resolveOrThrow(user, dir);
  const bus = new EventBus();
  const events: StateEvent[] = [];
  bus.onEvent((e) => {
    if (e.type === 'state') events.push(e);
  });
  const files = new LogFiles({ dir: config.logs.dir, maxSizeBytes: config.logs.maxSizeBytes, keep: config.logs.keep, onError: () => {} });
  files.attach(bus);
  const store = new StateStore(config.stateDir);
  const sup = new Supervisor({ config, bus, store, rerun: opts.rerun ?? [] });
  const started = sup.startAll(opts.only ?? []);
  if (!started.ok) throw new Error(started.error);
  let stopped = false;
  return {
    dir,
    config,
    sup,
    bus,
    events,
    files,
    waitState: (unit, state, timeout = 20_000) => {
      const want = Array.isArray(state) ? state : [state];
      const seen = events.length;
      return waitFor(() => events.slice(seen).find((e) => e.unit === unit && want.includes(e.state)) ?? (want.includes(sup.unit(unit)!.state) ? ({ unit, state: sup.unit(unit)!.state } as StateEvent) : undefined), {
        timeout,
        message: `${unit} to become ${want.join('|')} (now ${sup.unit(unit)?.state}: ${sup.unit(unit)?.snapshot().reason ?? ''})`,
      });
    },
    statesOf: (unit) => events.filter((e) => e.unit === unit).map((e) => e.state),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await sup.shutdown('test finished');
      await files.flush();
      files.close();
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
