// Runs every preflight check against a resolved config: programs (with the ~/.local/bin
// fallback), compose file and Docker for compose units, and ports that process units will
// serve but something else already holds (a stale server would pass this unit's probe).

import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import type { ResolvedConfig } from './config/types.ts';
import { ComposeProject, detectCompose, dockerReachable } from './compose/driver.ts';
import { checkPrograms, withPathAdditions, type Problem } from './preflight.ts';
import { checkEnvFiles } from './preflight-env.ts';
import { describePortHolders, loopbackPort } from './util/port-holder.ts';

export interface PreflightResult {
  problems: Problem[];
  notes: string[];
  /** The config with PATH extended for programs found outside PATH. */
  config: ResolvedConfig;
}

export interface PreflightOptions {
  /** Create the missing dotenv files units require with `create` (`up` does; `check` only says so). */
  write?: boolean;
}

export async function runPreflight(config: ResolvedConfig, opts: PreflightOptions = {}): Promise<PreflightResult> {
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
    else {
      const images = await checkImages(config, users);
      notes.push(...images.notes);
      problems.push(...images.problems);
    }
  }

  // An install task's output (.venv, node_modules) that is missing: said up front, since every
  // unit after it waits for the install.
  for (const name of config.order) {
    const u = config.units[name]!;
    if (!u.enabled || u.kind !== 'task' || !u.once) continue;
    for (const out of u.once.outputs) {
      if (existsSync(resolve(config.root, out))) continue;
      const cmd = u.command === undefined ? '' : typeof u.command === 'string' ? u.command : u.command.join(' ');
      notes.push(`${name}: ${out} is missing: \`up\` runs ${name} (${cmd}) first`);
    }
  }
  const envFiles = checkEnvFiles(config, { write: opts.write ?? false });
  problems.push(...envFiles.problems);
  notes.push(...envFiles.notes);

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

/**
 * Images the compose units will need that the local store lacks (`up` pulls them; offline, say
 * how to get them first), and services the compose file does not have.
 */
async function checkImages(config: ResolvedConfig, units: readonly string[]): Promise<{ notes: string[]; problems: Problem[] }> {
  const problems: Problem[] = [];
  const byFile = new Map<string, { project: string; env: Readonly<Record<string, string>>; services: { unit: string; service: string }[] }>();
  for (const n of units) {
    const u = config.units[n]!;
    if (u.kind !== 'compose' || !existsSync(u.file)) continue;
    const entry = byFile.get(u.file) ?? { project: u.project, env: u.env, services: [] };
    entry.services.push({ unit: n, service: u.service });
    byFile.set(u.file, entry);
  }
  const notes: string[] = [];
  for (const [file, { project, env, services }] of byFile) {
    const p = new ComposeProject({ file, project, cwd: config.root, env });
    try {
      const missing: { service: string; image: string }[] = [];
      for (const { unit, service } of services) {
        const img = await p.imageOf(service);
        if (!img.ok) {
          problems.push({ unit, message: img.reason });
          if (!img.reason.includes('is not in')) break; // the file itself is broken: once is enough
        } else if (!img.build && img.image !== undefined && !(await p.imagePresent(img.image))) {
          missing.push({ service, image: img.image });
        }
      }
      if (missing.length === 0) continue;
      const compose = await detectCompose({ env });
      const pull = [...(compose.ok ? compose.argv : ['docker', 'compose']), '-f', file, 'pull', ...missing.map((m) => m.service)].join(' ');
      notes.push(`images not in the local store: ${missing.map((m) => `${m.image} (${m.service})`).join(', ')}; \`up\` pulls them first (offline, it cannot: run ${pull} while online)`);
    } finally {
      await p.close();
    }
  }
  return { notes, problems };
}
