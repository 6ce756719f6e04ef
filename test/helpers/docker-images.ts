// Test images without a registry: `docker import` of a tarball holding a host binary, every
// library `ldd` names and the dynamic loader. Nothing is ever pulled.
//
// Images are cached by `docker image inspect`: the label `bksup.test.source` carries a hash of the
// host binary, so a changed binary (package upgrade) rebuilds the image. Images are kept between
// tests and runs (a few MB each; CI machines are discarded); `removeTestImages()` deletes them.
// Test workers (separate processes) that want the same image at once take turns through a lock
// directory in the temp dir; the second finds the image built and does nothing.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { dockerReachable, type ReachableResult } from '../../src/compose/driver.ts';
import { isAlive } from '../../src/util/proc.ts';

const exec = promisify(execFile);

export type TestImageName = 'bksup-test/nats' | 'bksup-test/redis';

interface ImageSpec {
  binary: string;
  /** Path of the binary inside the image; also argv[0] (redis-server picks its mode by that name). */
  target: string;
}

const SPECS: Record<TestImageName, ImageSpec> = {
  'bksup-test/nats': { binary: 'nats-server', target: '/usr/local/bin/nats-server' },
  'bksup-test/redis': { binary: 'redis-server', target: '/usr/local/bin/redis-server' },
};

const SOURCE_LABEL = 'bksup.test.source';
const built = new Map<TestImageName, Promise<string>>();

export function dockerAvailable(): Promise<ReachableResult> {
  return dockerReachable();
}

/** Finds a program on PATH plus the sbin directories (nats-server lives in /usr/sbin on Debian). */
export function which(program: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, program);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The shared objects a dynamic binary loads, including the loader itself (absolute paths as ldd prints them). */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await exec('ldd', [binary]);
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    if (/not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

async function imageSource(name: TestImageName): Promise<{ binary: string; hash: string }> {
  const spec = SPECS[name];
  const found = which(spec.binary);
  if (!found) throw new Error(`${spec.binary} not found on this machine (Debian: apt-get install ${spec.binary === 'nats-server' ? 'nats-server' : 'redis-server'})`);
  // redis-server is a symlink to redis-check-rdb: copy the real file.
  const binary = realpathSync(found);
  const hash = createHash('sha256').update(readFileSync(binary)).digest('hex').slice(0, 16);
  return { binary, hash };
}

async function imageInfo(ref: string): Promise<{ id: string; source: string } | undefined> {
  try {
    const { stdout } = await exec('docker', ['image', 'inspect', '--format', `{{.Id}} {{index .Config.Labels "${SOURCE_LABEL}"}}`, ref]);
    const [id = '', source = ''] = stdout.trim().split(' ');
    return { id, source };
  } catch {
    return undefined;
  }
}

/** Runs fn while holding a lock directory shared by all processes of this machine. */
async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const dir = join(tmpdir(), `bksup-test-image-${key.replace(/[^a-z0-9]+/gi, '-')}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      // the owner is between mkdir and writing its pid, or died there
    }
    let age = 0;
    try {
      age = Date.now() - statSync(dir).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    const stale = Number.isInteger(owner) && owner > 0 ? !isAlive(owner) : age > 10_000;
    if (stale) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${dir} (held by pid ${owner})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function build(name: TestImageName): Promise<string> {
  const ref = `${name}:latest`;
  const { binary, hash } = await imageSource(name);
  if ((await imageInfo(ref))?.source === hash) return ref;
  return withLock(name, async () => {
    const old = await imageInfo(ref);
    if (old?.source === hash) return ref; // another process built it while we waited
    const spec = SPECS[name];
    const work = await mkdtemp(join(tmpdir(), 'bksup-image-'));
    try {
      const root = join(work, 'root');
      const put = async (from: string, to: string): Promise<void> => {
        await mkdir(join(root, dirname(to)), { recursive: true });
        await copyFile(realpathSync(from), join(root, to)); // dereferences symlinked libraries
      };
      await put(binary, spec.target);
      for (const lib of await sharedLibraries(binary)) await put(lib, lib);
      for (const dir of ['data', 'tmp']) await mkdir(join(root, dir), { recursive: true });
      await chmod(join(root, 'tmp'), 0o1777);
      const tarball = join(work, 'image.tar');
      await exec('tar', ['-C', root, '--owner=0', '--group=0', '--numeric-owner', '-cf', tarball, '.']);
      await exec('docker', [
        'import',
        '--change', `ENTRYPOINT ["${spec.target}"]`,
        '--change', 'WORKDIR /data',
        '--change', `LABEL ${SOURCE_LABEL}=${hash}`,
        '--change', 'LABEL bksup.test=1',
        tarball,
        ref,
      ]);
      // The image of an older binary is now untagged; containers may still use it (then it stays).
      if (old) await exec('docker', ['rmi', old.id]).catch(() => undefined);
      return ref;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

/** Builds the image once (per process, and across runs while the host binary is unchanged); returns `name:latest`. */
export function ensureTestImage(name: TestImageName): Promise<string> {
  let p = built.get(name);
  if (!p) {
    p = build(name);
    built.set(name, p);
    p.catch(() => built.delete(name));
  }
  return p;
}

/** Removes every test image (optional; images are small and reused between runs). */
export async function removeTestImages(): Promise<void> {
  const { stdout } = await exec('docker', ['images', '-q', '--filter', 'label=bksup.test=1']);
  const ids = [...new Set(stdout.split('\n').filter(Boolean))];
  built.clear();
  if (ids.length) await exec('docker', ['rmi', '-f', ...ids]);
}

