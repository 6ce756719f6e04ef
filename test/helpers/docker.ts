// Docker facts and clean-up for tests. Tests only ever touch compose projects whose names they
// generated (prefix `bksuptest-`), and remove exactly those projects' containers, volumes and
// networks, found by the `com.docker.compose.project` label.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { dockerAvailable } from './docker-images.ts';

const exec = promisify(execFile);

export const TEST_PROJECT_PREFIX = 'bksuptest-';

/** A compose project name no other test (or test run) uses. */
export function uniqueProjectName(tag = 'p'): string {
  return `${TEST_PROJECT_PREFIX}${tag}-${process.pid}-${randomBytes(3).toString('hex')}`.toLowerCase();
}

/**
 * Docker reachable, or why not. Under CI=true an unreachable Docker throws: there the tests
 * must fail, not skip (the CI script starts dockerd). Locally the caller may skip with the reason.
 */
export async function requireDocker(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const r = await dockerAvailable();
  if (r.ok) return { ok: true };
  const hint = `${r.reason} (start it as root: dockerd --bridge=none --iptables=false >/tmp/dockerd.log 2>&1 &)`;
  if (process.env['CI']) throw new Error(`CI=true but ${hint}`);
  return { ok: false, reason: hint };
}

async function listIds(kind: 'container' | 'volume' | 'network', project: string): Promise<string[]> {
  const filter = `label=com.docker.compose.project=${project}`;
  const args =
    kind === 'container' ? ['ps', '-a', '-q', '--no-trunc', '--filter', filter] : [kind, 'ls', '-q', '--filter', filter];
  const { stdout } = await exec('docker', args);
  return stdout.split('\n').map((s) => s.trim()).filter(Boolean);
}

export interface ProjectLeftovers {
  containers: string[];
  volumes: string[];
  networks: string[];
}

export async function projectLeftovers(project: string): Promise<ProjectLeftovers> {
  return {
    containers: await listIds('container', project),
    volumes: await listIds('volume', project),
    networks: await listIds('network', project),
  };
}

/** Removes the project's containers (forcefully), then its volumes and networks; returns what it removed. */
export async function removeComposeProject(project: string): Promise<ProjectLeftovers> {
  if (!project.startsWith(TEST_PROJECT_PREFIX)) throw new Error(`refusing to remove ${project}: not a test project`);
  const found = await projectLeftovers(project);
  if (found.containers.length) await exec('docker', ['rm', '-f', '-v', ...found.containers]);
  if (found.volumes.length) await exec('docker', ['volume', 'rm', '-f', ...found.volumes]);
  if (found.networks.length) await exec('docker', ['network', 'rm', ...found.networks]);
  return found;
}

export { freePort } from './ports.ts';

/** `docker <args>` for test assertions; rejects on a non-zero exit. */
export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await exec('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** `docker <args>` with binary stdout (e.g. `docker cp <id>:/path -`, which writes a tar stream). */
export async function dockerBuffer(...args: string[]): Promise<Buffer> {
  const { stdout } = await exec('docker', args, { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}
