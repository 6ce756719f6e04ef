// `bksup check`: validate the config, print the dependency graph, then the preflight checks.
// Exit 0 when all is well, 1 when preflight found problems, 2 when the config is invalid.

import { loadConfig } from './config/load.ts';
import { renderGraph } from './graph.ts';
import { runPreflight } from './preflight-run.ts';

export interface CheckOptions {
  cwd: string;
  configPath?: string;
  preflight: boolean;
}

export async function checkCommand(opts: CheckOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const loaded = await loadConfig({ cwd: opts.cwd, ...(opts.configPath ? { configPath: opts.configPath } : {}) });
  if (!loaded.ok) {
    err.write(`config is not valid:\n${loaded.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 2;
  }
  const config = loaded.config;
  out.write(`config ${config.file}: ${config.order.length} units, valid\n\n${renderGraph(config)}\n`);
  if (!opts.preflight) return 0;
  const result = await runPreflight(config);
  for (const note of result.notes) out.write(`  note: ${note}\n`);
  if (result.problems.length === 0) {
    out.write('\npreflight: all checks passed\n');
    return 0;
  }
  err.write(`\npreflight found ${result.problems.length} problem(s):\n`);
  for (const p of result.problems) err.write(`  ${p.unit ? `${p.unit}: ` : ''}${p.message}\n`);
  return 1;
}
