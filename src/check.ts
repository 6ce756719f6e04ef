// `bksup check`: validate the config, print the dependency graph, then the preflight checks.
// Exit 0 when all is well, 1 when preflight found problems, 2 when the config is invalid.

import { relative } from 'node:path';
import { loadConfig } from './config/load.ts';
import type { ResolvedConfig } from './config/types.ts';
import { renderGraph } from './graph.ts';
import { runPreflight } from './preflight-run.ts';
import { redactText, redactUrl } from './util/redact.ts';
import { daemonSecrets } from './util/secrets.ts';

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
  // The same secrets the daemon masks: a command may carry an inherited secret the config read
  // from process.env, or a probe's password; `check` output is pasted into issues and chats.
  const secrets = daemonSecrets(config);
  out.write(`\n${describeRuns(config, secrets)}`);
  if (!opts.preflight) return 0;
  const result = await runPreflight(config);
  for (const note of result.notes) out.write(`  note: ${redactText(note, secrets)}\n`);
  if (result.problems.length === 0) {
    out.write('\npreflight: all checks passed\n');
    return 0;
  }
  err.write(`\npreflight found ${result.problems.length} problem(s):\n`);
  for (const p of result.problems) err.write(`  ${p.unit ? `${p.unit}: ` : ''}${redactText(p.message, secrets)}\n`);
  return 1;
}

/** What each unit runs, and the verify checks: what `up` will do, readable before it does it. */
function describeRuns(config: ResolvedConfig, secrets: readonly string[]): string {
  const lines = ['commands:'];
  for (const name of config.order) {
    const u = config.units[name]!;
    if (!u.enabled) continue;
    const flags = u.kind === 'task' ? [u.once ? 'once' : '', u.optional ? 'optional' : ''].filter(Boolean) : [];
    const tag = flags.length ? ` [${flags.join(', ')}]` : '';
    const cwd = relative(config.root, u.kind === 'compose' ? config.root : u.cwd) || '.';
    let what: string;
    if (u.kind === 'compose') what = `compose service ${u.service}`;
    else if (u.kind === 'task' && u.postgres) what = `ensure databases ${(u.postgres.ensureDatabases ?? []).join(', ')}`;
    else if (u.command === undefined) continue;
    else what = `${typeof u.command === 'string' ? u.command : u.command.join(' ')} (in ${cwd})`;
    lines.push(`  ${name}${tag}: ${redactText(what, secrets)}`);
  }
  lines.push('verify:');
  if (config.verify.length === 0) lines.push('  (none)');
  for (const c of config.verify) lines.push(`  ${c.name}: ${c.browser ? `browser ${redactUrl(c.browser.url)}` : `${c.method} ${redactUrl(c.url)}`}`);
  return `${lines.join('\n')}\n`;
}
