// 6. CLI latency and 7. daemon start-up: the waits a developer feels outside the supervised
// processes. bk-supervisor only (PM2 and supervisord have no equivalent configuration step).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { nowMs, waitFor } from './proc.ts';
import { ROOT, type Tool } from './tools.ts';
import { median, type Ctx } from './workloads.ts';

export const CLI_RUNS = 7;

export interface CliResult {
  /** `node -e 0` in the same run: this machine's floor for any Node command. */
  nodeMs: number;
  /** `npx bksup status` (the README's former form), in the checkout. */
  npxMs: number;
  /** `npm run status` (the package script: `bin/bksup status`). */
  npmRunMs: number;
  /** `bin/bksup status`. */
  binMs: number;
  /** `bksup status` with bksup on PATH as `npm link` puts it (a symlink chain to bin/bksup). */
  linkedMs: number;
}

/**
 * A running daemon (one idle unit), then each form of `status` CLI_RUNS times, interleaved so
 * that load changes hit every form alike; wall time from spawn to exit, medians. Every form
 * names the config (`status --config <file>`) and runs in the checkout (where npx and npm run find bksup).
 */
export async function cliLatency(tool: Tool, ctx: Ctx): Promise<CliResult> {
  const s = await tool.start({ dir: ctx.dir, marker: ctx.marker, units: [{ name: 'idle', script: 'exec sleep 3600', restart: 'never', stopTimeoutMs: 2000 }] });
  try {
    // What `npm link` makes: <prefix>/bin/bksup → ../lib/node_modules/bk-supervisor/bin/bksup, and
    // that package directory → the checkout.
    const prefix = join(ctx.dir, 'prefix');
    mkdirSync(join(prefix, 'bin'), { recursive: true });
    mkdirSync(join(prefix, 'lib', 'node_modules'), { recursive: true });
    symlinkSync(ROOT, join(prefix, 'lib', 'node_modules', 'bk-supervisor'));
    symlinkSync(join('..', 'lib', 'node_modules', 'bk-supervisor', 'bin', 'bksup'), join(prefix, 'bin', 'bksup'));
    const config = join(ctx.dir, 'supervisor.config.ts');
    const env = { ...process.env, NODE_OPTIONS: '', PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` };
    const forms: Record<keyof CliResult, string[]> = {
      nodeMs: [process.execPath, '-e', '0'],
      npxMs: ['npx', '--no', 'bksup', 'status', '--config', config],
      npmRunMs: ['npm', 'run', '--silent', 'status', '--', '--config', config],
      binMs: [join(ROOT, 'bin', 'bksup'), 'status', '--config', config],
      linkedMs: ['bksup', 'status', '--config', config],
    };
    const times = new Map<keyof CliResult, number[]>();
    for (let i = 0; i < CLI_RUNS; i++) {
      for (const [name, argv] of Object.entries(forms) as [keyof CliResult, string[]][]) {
        const t0 = nowMs();
        const r = spawnSync(argv[0] as string, argv.slice(1), { cwd: ROOT, env, encoding: 'utf8' });
        const ms = nowMs() - t0;
        if (r.status !== 0 || (name !== 'nodeMs' && !/^idle\s/m.test(r.stdout))) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr || r.stdout}`);
        times.set(name, [...(times.get(name) ?? []), ms]);
      }
    }
    const med = (k: keyof CliResult): number => median(times.get(k) ?? []);
    return { nodeMs: med('nodeMs'), npxMs: med('npxMs'), npmRunMs: med('npmRunMs'), binMs: med('binMs'), linkedMs: med('linkedMs') };
  } finally {
    await s.close();
  }
}

export interface StartupResult {
  /** `bksup up` → first unit starting, the config never seen before (evaluated in the loader child). */
  coldMs: number;
  /** The same, `up` again with the config unchanged (the memo's resolved config). */
  warmMs: number;
}

function firstStartAfter(logFile: string, after: number): number | undefined {
  if (!existsSync(logFile)) return undefined;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = /^(\S+) system \d+ ● starting/.exec(line);
    const t = m ? Date.parse(m[1] as string) : NaN;
    if (t >= after - 1) return t;
  }
  return undefined;
}

/** One unit, `bksup up` twice in the same directory: invocation → the unit's `starting` line. */
export async function daemonStartup(tool: Tool, ctx: Ctx): Promise<StartupResult> {
  const once = async (): Promise<number> => {
    const upAt = nowMs();
    const s = await tool.start({ dir: ctx.dir, marker: ctx.marker, units: [{ name: 'idle', script: 'exec sleep 3600', restart: 'never', stopTimeoutMs: 2000 }] });
    try {
      const started = await waitFor(() => firstStartAfter(s.logFile('idle'), upAt), 'the unit starting', 30_000, 5);
      return started - upAt;
    } finally {
      await s.close();
    }
  };
  const coldMs = await once();
  const warmMs = await once();
  return { coldMs, warmMs };
}
