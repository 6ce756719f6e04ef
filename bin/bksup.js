#!/usr/bin/env node
// `bksup`. Runs dist/bksup.js, one ESM bundle of src/ made by esbuild (a dependency of tsx),
// rebuilt right here whenever a file under src/ (or this file) is newer than it: a fresh clone
// needs no separate build step, the first run just takes ~0.3 s longer.
//
// Why not tsx's loader at run time, as before: in the long-running daemon it cost ~40 MiB
// (a loader thread and an esbuild service process) and about a second of start-up, and every
// module was transformed again on each start. The bundle keeps each source file's own
// `import.meta.url` / `dirname` / `filename` (rewritten to the source path), so files found
// next to the sources (dashboard assets, fixtures) are still found.
//
// When no bundle can be built (esbuild missing, read-only checkout), the TypeScript sources run
// through tsx's loader as they always did.

import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Settings that bin/bksup (the launcher) gave this process only: gone before any child starts.
for (const name of (process.env.BKSUP_UNSET_ENV ?? '').split(' ')) if (name) delete process.env[name];
delete process.env.BKSUP_UNSET_ENV;
// NODE_EXTRA_CA_CERTS, which bin/bksup kept from Node's start-up (`up` only): back in the
// environment for the children; this process's TLS trusts it through src/util/extra-ca.ts.
if (process.env.BKSUP_EXTRA_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.BKSUP_EXTRA_CA_CERTS;
  globalThis[Symbol.for('bk-supervisor.extraCaCerts')] = process.env.BKSUP_EXTRA_CA_CERTS;
  delete process.env.BKSUP_EXTRA_CA_CERTS;
}

const self = fileURLToPath(import.meta.url);
const root = join(dirname(self), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const out = join(dist, 'bksup.js');
// The daemon imports the (TypeScript) config in a short-lived child running this bundle: see
// importInChild in src/config/load.ts.
const configChild = join(dist, 'config-child.js');
const chunks = join(dist, 'chunks');

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function isFresh() {
  try {
    const built = Math.min(statSync(out).mtimeMs, statSync(configChild).mtimeMs);
    return built >= Math.max(newestMtime(src), statSync(self).mtimeMs);
  } catch {
    return false;
  }
}

function loadEsbuild() {
  const require = createRequire(self);
  try {
    return require('esbuild');
  } catch {
    // Not hoisted: the copy tsx depends on.
    return createRequire(join(root, 'node_modules', 'tsx', 'package.json'))('esbuild');
  }
}

const IMPORT_META = /\bimport\.meta\.(url|dirname|filename)\b/g;

async function build() {
  const esbuild = loadEsbuild();
  const tmp = join(dist, `.build-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  // The async API (plugins need it) runs an esbuild service process: stopped right after.
  // Code splitting: what only `up`, `check` or `verify` need (the daemon, the config loader,
  // pino, prom-client…) sits in chunks that a client command (status, logs…) never loads.
  await esbuild.build({
    entryPoints: { bksup: join(src, 'main.ts'), 'config-child': join(src, 'config', 'child.ts') },
    outdir: tmp,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
    plugins: [
      {
        name: 'keep-import-meta',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, (args) => {
            const text = readFileSync(args.path, 'utf8');
            const value = { url: pathToFileURL(args.path).href, dirname: dirname(args.path), filename: args.path };
            return { contents: text.replace(IMPORT_META, (_, k) => JSON.stringify(value[k])), loader: 'ts' };
          });
        },
      },
    ],
  });
  await esbuild.stop();
  // Chunks first (their names carry a content hash, so a running bksup never sees one change),
  // then the entries; each rename is atomic: concurrent runs (parallel tests) never see half a
  // file. Chunks of older builds stay a while for processes still starting from them.
  mkdirSync(chunks, { recursive: true });
  const made = new Set(readdirSync(join(tmp, 'chunks')));
  for (const name of made) renameSync(join(tmp, 'chunks', name), join(chunks, name));
  renameSync(join(tmp, 'config-child.js'), configChild);
  renameSync(join(tmp, 'bksup.js'), out);
  rmSync(tmp, { recursive: true, force: true });
  const old = Date.now() - 10 * 60_000;
  for (const name of readdirSync(chunks)) {
    if (!made.has(name) && statSync(join(chunks, name)).mtimeMs < old) rmSync(join(chunks, name), { force: true });
  }
}

let entry = out;
if (!process.env.BKSUP_NO_BUILD && !isFresh()) {
  try {
    await build();
  } catch (err) {
    rmSync(join(dist, `.build-${process.pid}`), { recursive: true, force: true });
    process.stderr.write(`bksup: could not build dist/bksup.js (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); running the TypeScript sources through tsx\n`);
    entry = undefined;
  }
}
if (process.env.BKSUP_NO_BUILD) entry = undefined;

if (entry) {
  globalThis[Symbol.for('bk-supervisor.configChildEntry')] = configChild;
  await import(pathToFileURL(entry).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
