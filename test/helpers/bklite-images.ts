// The images of the BK-Lite-shaped checkout, made on this machine (nothing is pulled from the
// internet) and served by a local registry so that the stack's `compose pull` runs for real:
//
//   bksup-test/pg15      Debian's PostgreSQL 15 binaries + an entry point with the official
//                        image's variables (POSTGRES_USER/PASSWORD/DB)
//   bksup-test/nats      nats-server       bksup-test/redis   redis-server (also falkordb's port)
//   bksup-test/http-ok   a static 200-on-every-GET server, for minio / victoria-* / mlflow
//
// Each is `docker import` of a tarball (binary + its ldd libraries), cached by a hash of its
// sources in a label, like test/helpers/docker-images.ts does for nats and redis.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ensureTestImage, sharedLibraries, which } from './docker-images.ts';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

const exec = promisify(execFile);
const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'bklite-checkout', 'images');
const SOURCE_LABEL = 'bksup.test.source';
const PG = '/usr/lib/postgresql/15';
/** uid of `postgres` inside the image: initdb refuses root and needs a passwd entry. */
const PG_UID = 999;

interface Layout {
  /** host path → path in the image (libraries of executables are added). */
  files: [string, string][];
  executables: string[];
  entrypoint: string[];
  changes?: string[];
  /** directories owned by PG_UID (the rest is root's). */
  pgOwned?: string[];
}

async function hashOf(paths: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of paths.sort()) h.update(p).update(readFileSync(p));
  return h.digest('hex').slice(0, 16);
}

async function labelOf(ref: string): Promise<string | undefined> {
  try {
    const { stdout } = await exec('docker', ['image', 'inspect', '--format', `{{index .Config.Labels "${SOURCE_LABEL}"}}`, ref]);
    return stdout.trim();
  } catch {
    return undefined;
  }
}

async function importImage(ref: string, layout: Layout, hash: string): Promise<string> {
  if ((await labelOf(ref)) === hash) return ref;
  const work = await mkdtemp(join(tmpdir(), 'bksup-bklite-image-'));
  try {
    const root = join(work, 'root');
    const put = async (from: string, to: string): Promise<void> => {
      await mkdir(join(root, dirname(to)), { recursive: true });
      await copyFile(realpathSync(from), join(root, to));
      await chmod(join(root, to), statSync(realpathSync(from)).mode & 0o777);
    };
    for (const [from, to] of layout.files) await put(from, to);
    for (const bin of layout.executables) for (const lib of await sharedLibraries(bin)) await put(lib, lib);
    await mkdir(join(root, 'tmp'), { recursive: true });
    await chmod(join(root, 'tmp'), 0o1777);
    for (const dir of layout.pgOwned ?? []) {
      await mkdir(join(root, dir), { recursive: true });
      await chown(join(root, dir), PG_UID, PG_UID);
    }
    const tarball = join(work, 'image.tar');
    await exec('tar', ['-C', root, '--numeric-owner', '-cf', tarball, '.']);
    const changes = [`ENTRYPOINT ${JSON.stringify(layout.entrypoint)}`, `LABEL ${SOURCE_LABEL}=${hash}`, 'LABEL bksup.test=1', ...(layout.changes ?? [])];
    await exec('docker', ['import', ...changes.flatMap((c) => ['--change', c]), tarball, ref]);
    return ref;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function filesUnder(dir: string, skip: (name: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (skip(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, skip));
    else out.push(p);
  }
  return out;
}

async function postgresImage(): Promise<string> {
  const bins = [`${PG}/bin/postgres`, `${PG}/bin/initdb`];
  // llvmjit and the bitcode are 20 MB nobody here needs; the rest is what initdb loads or links.
  const libs = filesUnder(`${PG}/lib`, (n) => n === 'bitcode' || n.startsWith('llvmjit'));
  const share = filesUnder('/usr/share/postgresql/15', (n) => n === 'man' || n === 'contrib');
  const zones = ['/usr/share/zoneinfo/UTC', '/usr/share/zoneinfo/GMT', '/usr/share/zoneinfo/Etc/UTC'];
  const dash = realpathSync('/bin/sh');
  const entry = join(FIXTURE, 'postgres-entrypoint.sh');
  const work = await mkdtemp(join(tmpdir(), 'bksup-pg-etc-'));
  const passwd = join(work, 'passwd');
  const group = join(work, 'group');
  writeFileSync(passwd, `root:x:0:0:root:/root:/bin/sh\npostgres:x:${PG_UID}:${PG_UID}:postgres:/var/lib/postgresql:/bin/sh\n`);
  writeFileSync(group, `root:x:0:\npostgres:x:${PG_UID}:\n`);
  const files: [string, string][] = [
    ...[...bins, ...libs, ...share, ...zones].map((p): [string, string] => [p, p]),
    [dash, '/bin/sh'],
    [entry, '/docker-entrypoint.sh'],
    [passwd, '/etc/passwd'],
    [group, '/etc/group'],
  ];
  const hash = await hashOf([...bins, entry, dash]);
  try {
    return await importImage('bksup-test/pg15:latest', {
      files,
      executables: [...bins, dash, ...libs.filter((l) => l.endsWith('.so'))],
      entrypoint: ['/bin/sh', '/docker-entrypoint.sh'],
      changes: [`USER ${PG_UID}`, 'ENV PGDATA=/var/lib/postgresql/data', 'ENV TZ=UTC', 'ENV LANG=C'],
      pgOwned: ['/var/lib/postgresql', '/var/lib/postgresql/data', '/var/run/postgresql'],
    }, hash);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function httpOkImage(): Promise<string> {
  const source = join(FIXTURE, 'http-ok.c');
  const hash = await hashOf([source]);
  if ((await labelOf('bksup-test/http-ok:latest')) === hash) return 'bksup-test/http-ok:latest';
  const work = await mkdtemp(join(tmpdir(), 'bksup-http-ok-'));
  try {
    const binary = join(work, 'http-ok');
    await exec('gcc', ['-static', '-O2', '-o', binary, source]);
    return await importImage('bksup-test/http-ok:latest', { files: [[binary, '/http-ok']], executables: [], entrypoint: ['/http-ok'] }, hash);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface FixtureImages {
  postgres: string;
  redis: string;
  nats: string;
  httpOk: string;
}

export async function buildFixtureImages(): Promise<FixtureImages> {
  if (!which('gcc')) throw new Error('gcc not found (Debian: apt-get install gcc libc6-dev): it builds the http-ok stand-in image');
  const [postgres, redis, nats, httpOk] = await Promise.all([
    postgresImage(),
    ensureTestImage('bksup-test/redis'),
    ensureTestImage('bksup-test/nats'),
    httpOkImage(),
  ]);
  return { postgres, redis, nats, httpOk };
}

export interface LocalRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Debian's docker-registry on a free loopback port, storing into a temp dir (removed by stop). */
export async function startRegistry(): Promise<LocalRegistry> {
  const program = which('docker-registry');
  if (!program) throw new Error('docker-registry not found (Debian: apt-get install docker-registry; bash .ci/run installs it)');
  const dir = await mkdtemp(join(tmpdir(), 'bksup-registry-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`, 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'),
  );
  // Detached: its own process group, so stop() ends exactly it.
  const child = spawn(program, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const host = `127.0.0.1:${port}`;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => child.exitCode === null && (await fetch(`http://${host}/v2/`)).ok, { timeout: 20_000, message: `docker-registry on ${host}` });
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${out}`);
  }
  return { host, child, output: () => out, stop };
}

/**
 * Pushes a local image to the registry as `<host>/bklite/<name>` and removes that tag from the
 * Docker store again: only a pull brings it back.
 */
export async function publish(registry: LocalRegistry, local: string, name: string): Promise<string> {
  const remote = `${registry.host}/bklite/${name}`;
  await exec('docker', ['tag', local, remote]);
  await exec('docker', ['push', remote], { maxBuffer: 16 * 1024 * 1024 });
  await exec('docker', ['rmi', remote]);
  return remote;
}

/** Whether the Docker store holds the image (tag) now. */
export async function imagePresent(ref: string): Promise<boolean> {
  try {
    await exec('docker', ['image', 'inspect', ref]);
    return true;
  } catch {
    return false;
  }
}
