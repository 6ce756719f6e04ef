// What evaluating a config depended on, so that its result can be reused without evaluating it
// again (src/config/memo.ts). A config is a program: besides its own source and its imports it
// may read environment variables (BKLITE_ROOT), the current directory, and probe the file system
// (findBkliteRoot walks up looking for docker-compose.dev.yml). Each of those reads is recorded
// with a signature of what it saw; the result stays valid while every signature is unchanged.
//
// Recording patches node:fs (and syncs the ESM bindings, so `import { statSync } from 'node:fs'`
// is seen too), process.env and process.cwd in the config-loader child only, for the duration of
// one evaluation. Files under node_modules are not recorded: packages change by installs, and
// recording them would make every check slower.

import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export type Dep =
  | { kind: 'file'; path: string; sig: string }
  | { kind: 'stat'; path: string; sig: string }
  | { kind: 'lstat'; path: string; sig: string }
  | { kind: 'dir'; path: string; sig: string }
  | { kind: 'env'; name: string; value: string | null }
  | { kind: 'env*'; sig: string }
  | { kind: 'cwd'; value: string };

/**
 * A 64-bit FNV-1a digest (two 32-bit lanes) with the length: to notice a change, not to resist
 * an adversary, and without node:crypto, which client commands do not load.
 */
export function digest(data: string | Buffer): string {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (a >>> 15);
  }
  return `${bytes.length}:${(a >>> 0).toString(16)}${(b >>> 0).toString(16)}`;
}

function statKind(st: fs.Stats | undefined): string {
  if (!st) return 'missing';
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
}

/** The signature of `dep`'s target as it is now (compare with dep.sig / dep.value). */
function current(dep: Dep, env: NodeJS.ProcessEnv, cwd: () => string): string | null {
  switch (dep.kind) {
    case 'file':
      return fileSig(dep.path);
    case 'stat':
      return statKind(fs.statSync(dep.path, { throwIfNoEntry: false }));
    case 'lstat':
      return statKind(fs.lstatSync(dep.path, { throwIfNoEntry: false }));
    case 'dir':
      return dirSig(dep.path);
    case 'env':
      return env[dep.name] ?? null;
    case 'env*':
      return envSig(env);
    case 'cwd':
      return cwd();
  }
}

export function fileSig(path: string): string {
  try {
    return digest(fs.readFileSync(path));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unreadable';
  }
}

function dirSig(path: string): string {
  try {
    return digest(fs.readdirSync(path).sort().join('\n'));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unreadable';
  }
}

/** The whole environment (a config that spreads process.env depends on all of it). */
export function envSig(env: NodeJS.ProcessEnv): string {
  const entries = Object.entries(env).filter(([, v]) => v !== undefined);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return digest(JSON.stringify(entries));
}

/** True while every recorded read would see the same thing again. */
export function depsHold(deps: readonly Dep[], env: NodeJS.ProcessEnv, cwd: () => string = () => process.cwd()): boolean {
  for (const dep of deps) {
    const want = dep.kind === 'env' || dep.kind === 'cwd' ? dep.value : dep.sig;
    if (current(dep, env, cwd) !== want) return false;
  }
  return true;
}

function pathOf(p: unknown): string | undefined {
  if (typeof p === 'string') return resolve(p);
  if (p instanceof URL && p.protocol === 'file:') return fileURLToPath(p);
  if (Buffer.isBuffer(p)) return resolve(p.toString());
  return undefined;
}

const LOADER = /[/\\]node_modules[/\\](?:tsx|esbuild|get-tsconfig)[/\\]/;

/**
 * Whether the read was made by the TypeScript loader (its cache, tsconfig lookups, its own
 * settings, Node's module loader) rather than by the config: the first caller outside Node's
 * internals decides.
 * `fn` is the patched function, left out of the stack; `self` the loader's own script.
 */
function calledByLoader(fn: (...args: never[]) => unknown, self: string): boolean {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  Error.captureStackTrace(holder, fn);
  Error.stackTraceLimit = limit;
  for (const frame of (holder.stack ?? '').split('\n').slice(1)) {
    if (!/file:\/\/|\(\/|at \//.test(frame)) continue; // Node's internals, native code
    return LOADER.test(frame) || frame.includes(self);
  }
  return true; // only Node's own module loader on the stack
}

const PATCHED = { statSync: 'stat', existsSync: 'stat', accessSync: 'stat', lstatSync: 'lstat', readFileSync: 'file', readdirSync: 'dir' } as const;

export interface Recorder {
  /** Stops recording and restores fs, process.env and process.cwd. */
  stop(): Dep[];
}

/**
 * Starts recording the reads of the code that runs until `stop()`. Only one recorder at a time;
 * it is meant for the config-loader child, which evaluates exactly one config.
 */
export function startRecording(opts: { ignoreOwnScript: boolean }): Recorder {
  // The loader process's own script (dist/config-child.js): while the config is evaluated, its
  // reads (e.g. resolving the config's path against the cwd) are not the config's.
  const self = opts.ignoreOwnScript && process.argv[1] ? pathToFileURL(process.argv[1]).href : '\0';
  // Formatting the stack reads the cwd itself (source maps): nothing is recorded meanwhile.
  const byLoader = (fn: (...args: never[]) => unknown): boolean => {
    on = false;
    try {
      return calledByLoader(fn, self);
    } finally {
      on = true;
    }
  };
  const deps = new Map<string, Dep>();
  let on = true;
  const add = (dep: Dep, key: string): void => {
    if (on && !deps.has(key)) deps.set(key, dep);
  };
  const addPath = (kind: 'file' | 'stat' | 'lstat' | 'dir', raw: unknown): void => {
    const path = pathOf(raw);
    if (!on || path === undefined || path.includes('/node_modules/') || deps.has(`${kind}:${path}`)) return;
    on = false; // the signature's own reads are not the config's
    try {
      const sig = kind === 'file' ? fileSig(path) : kind === 'dir' ? dirSig(path) : current({ kind, path, sig: '' }, {}, () => '');
      deps.set(`${kind}:${path}`, { kind, path, sig: sig ?? 'missing' });
    } finally {
      on = true;
    }
  };

  const mutableFs = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = new Map<string, (...args: unknown[]) => unknown>();
  for (const [name, kind] of Object.entries(PATCHED)) {
    const orig = mutableFs[name]!;
    originals.set(name, orig);
    const patched = function (this: unknown, ...args: unknown[]): unknown {
      if (on && !byLoader(patched)) addPath(kind, args[0]);
      return orig.apply(this, args);
    };
    mutableFs[name] = patched;
  }
  syncBuiltinESMExports();

  const env = process.env;
  const traps: ProxyHandler<NodeJS.ProcessEnv> = {
    get(target, key) {
      if (typeof key === 'string' && on && !byLoader(traps.get!)) add({ kind: 'env', name: key, value: target[key] ?? null }, `env:${key}`);
      return Reflect.get(target, key);
    },
    has(target, key) {
      if (typeof key === 'string' && on && !byLoader(traps.has!)) add({ kind: 'env', name: key, value: target[key] ?? null }, `env:${key}`);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      if (on && !byLoader(traps.ownKeys!)) add({ kind: 'env*', sig: envSig(target) }, 'env*');
      return Reflect.ownKeys(target);
    },
  };
  process.env = new Proxy(env, traps);
  const cwd = process.cwd;
  const patchedCwd = (): string => {
    const value = cwd.call(process);
    if (on && !byLoader(patchedCwd)) add({ kind: 'cwd', value }, 'cwd');
    return value;
  };
  process.cwd = patchedCwd;

  return {
    stop() {
      on = false;
      for (const [name, orig] of originals) mutableFs[name] = orig;
      syncBuiltinESMExports();
      process.env = env;
      process.cwd = cwd;
      return [...deps.values()];
    },
  };
}
