// Runs every preflight check against a resolved config: programs (with the ~/.local/bin
// fallback), compose file and Docker for compose units, and ports that process units will
// serve but something else already holds (a stale server would pass this unit's probe).

import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import type { ResolvedConfig } from './config/types.ts';
import { dockerReachable } from './compose/driver.ts';
import { checkPrograms, withPathAdditions, type Problem } from './preflight.ts';
import { describePortHolders, loopbackPort } from './util/port-holder.ts';

export interface PreflightResult {
  problems: Problem[];
  notes: string[];
  /** The config with PATH extended for programs found outside PATH. */
  config: ResolvedConfig;
}

export async function runPreflight(config: ResolvedConfig): Promise<PreflightResult> {
  const { problems, pathAdditions } = checkPrograms(config);
  const notes: string[] = [];
  for (const [unit, dir] of pathAdditions) notes.push(`${unit}: found its program in ${dir}, which is not on PATH; the unit's PATH will include it`);

  const composeUnits = config.order.filter((n) => config.units[n]!.enabled && config.units[n]!.kind === 'compose');
  const files = new Set(composeUnits.map((n) => { const u = config.units[n]!; return u.kind === 'compose' ? u.file : ''; }));
  for (const file of files) {
    if (!existsSync(file)) {
      const users = composeUnits.filter((n) => { const u = config.units[n]!; return u.kind === 'compose' && u.file === file; });
      problems.push({ unit: undefined, message: `compose file ${file} not found (needed by ${users.join(', ')}; set compose.file or BKLITE_ROOT)` });
    }
  }
  // Ask each Docker the units will talk to: a unit's env may point the CLI elsewhere (DOCKER_HOST…).
  const byDocker = new Map<string, string[]>();
  for (const n of composeUnits) {
    const key = dockerTarget(config.units[n]!.env);
    byDocker.set(key, [...(byDocker.get(key) ?? []), n]);
  }
  for (const users of byDocker.values()) {
    const docker = await dockerReachable({ env: config.units[users[0]!]!.env });
    if (!docker.ok) problems.push({ unit: undefined, message: `${docker.reason} (needed by ${users.join(', ')}; start Docker first)` });
  }

  for (const name of config.order) {
    const u = config.units[name]!;
    if (!u.enabled) continue;
    for (const r of u.requires) {
      if (!existsSync(r.file)) problems.push({ unit: name, message: `${r.file} is missing${r.hint ? ` (${r.hint})` : ''}` });
    }
  }

  for (const name of config.order) {
    const u = config.units[name]!;
    if (!u.enabled || u.kind !== 'process' || !u.healthcheck) continue;
    const port = loopbackPort(u.healthcheck.probe);
    if (port !== undefined && !(await portFree(port))) {
      const holder = describePortHolders(port) ?? `port ${port} is in use`;
      problems.push({ unit: name, message: `${holder}; ${name} would not be able to listen on it, or its health check would pass for the wrong process` });
    }
  }
  return { problems, notes, config: withPathAdditions(config, pathAdditions) };
}

/** The variables that choose which daemon the docker CLI talks to. */
const DOCKER_TARGET_VARS = ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_CONFIG', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH'];

function dockerTarget(env: Readonly<Record<string, string>>): string {
  return JSON.stringify(DOCKER_TARGET_VARS.map((k) => env[k] ?? null));
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
