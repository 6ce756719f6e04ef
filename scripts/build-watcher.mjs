#!/usr/bin/env node
// Builds @parcel/watcher's own sources (shipped in its npm package) without the 500 ms timeout of
// its Linux watcher thread's poll(), into build/parcel-watcher/<version>/watcher.node, which
// src/watch/binding.ts prefers to the prebuilt binary. `npm ci` runs it (postinstall).
//
// Why: the prebuilt thread wakes up every 500 ms while nothing changes (20 wake-ups per 10 s of an
// idle daemon, strace), which is the whole idle CPU cost of watching (bench/NOTES.md, "Idle cost
// of watching"). The timeout is not needed: the thread is also woken through a pipe when it must
// stop, so with poll(…, -1) it sleeps until an event or the stop.
//
// Optional, like node-pty's build: without a compiler, on another OS, or when a newer
// @parcel/watcher no longer has the line, this says why and exits 0; the prebuilt binary is used.
// BKSUP_SKIP_WATCHER_BUILD=1 skips it.

import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(ROOT, 'package.json'));
const POLL = 'poll(pollfds, 2, 500)';
const BLOCKING = 'poll(pollfds, 2, -1)';
const say = (msg) => process.stderr.write(`bksup: build-watcher: ${msg}\n`);

function nodeGyp() {
  // npm hands its bundled node-gyp to lifecycle scripts; run by hand, it sits beside npm.
  const candidates = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  return candidates.find((p) => p && existsSync(p));
}

function nodeDir() {
  // node-gyp would download Node's headers; only the package registries may be reachable.
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

/** Subscribes with the new binary, sees one change, unsubscribes: a build that loads but hangs or misses events is not kept. */
async function smokeTest(binary) {
  const { createWrapper } = require('@parcel/watcher/wrapper.js');
  const watcher = createWrapper(require(binary));
  const dir = mkdtempSync(join(tmpdir(), 'bksup-watcher-smoke-'));
  try {
    let seen;
    const event = new Promise((resolve) => (seen = resolve));
    const sub = await watcher.subscribe(dir, (err, events) => !err && events.length && seen(true));
    writeFileSync(join(dir, 'probe.txt'), 'x');
    let timer;
    const ok = await Promise.race([event, new Promise((resolve) => (timer = setTimeout(() => resolve(false), 10_000)))]);
    clearTimeout(timer);
    await sub.unsubscribe();
    if (!ok) throw new Error('no event within 10 s');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  if (process.env.BKSUP_SKIP_WATCHER_BUILD) return say('skipped (BKSUP_SKIP_WATCHER_BUILD)');
  if (process.platform !== 'linux') return say(`not needed on ${process.platform} (the timed poll is in the Linux backend)`);
  const pkgDir = dirname(require.resolve('@parcel/watcher/package.json'));
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const out = join(ROOT, 'build', 'parcel-watcher', version, 'watcher.node');
  if (existsSync(out)) return say(`${out} is there`);
  const backend = join(pkgDir, 'src', 'linux', 'InotifyBackend.cc');
  if (!existsSync(backend)) return say(`@parcel/watcher ${version} ships no sources: using its prebuilt binary`);
  const gyp = nodeGyp();
  if (!gyp) return say('node-gyp not found: using the prebuilt binary');

  const work = mkdtempSync(join(tmpdir(), 'bksup-watcher-build-'));
  try {
    cpSync(join(pkgDir, 'src'), join(work, 'src'), { recursive: true });
    copyFileSync(join(pkgDir, 'binding.gyp'), join(work, 'binding.gyp'));
    const source = readFileSync(backend, 'utf8');
    if (!source.includes(POLL)) return say(`@parcel/watcher ${version} has no "${POLL}" any more: using its prebuilt binary`);
    writeFileSync(join(work, 'src', 'linux', 'InotifyBackend.cc'), source.replace(POLL, BLOCKING));
    // binding.gyp asks `node -p "require('node-addon-api').include_dir"` from the build directory.
    mkdirSync(join(work, 'node_modules'));
    symlinkSync(dirname(createRequire(join(pkgDir, 'package.json')).resolve('node-addon-api/package.json')), join(work, 'node_modules', 'node-addon-api'));
    const dir = nodeDir();
    const args = [gyp, 'rebuild', '--release', '-j', 'max', ...(dir ? [`--nodedir=${dir}`] : [])];
    say(`building @parcel/watcher ${version} without the 500 ms poll timeout (about 30 s)`);
    execFileSync(process.execPath, args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    const built = join(work, 'build', 'Release', 'watcher.node');
    await smokeTest(built);
    mkdirSync(dirname(out), { recursive: true });
    // Copy then rename: a daemon starting meanwhile never loads half a file.
    copyFileSync(built, `${out}.${process.pid}`);
    renameSync(`${out}.${process.pid}`, out);
    say(`built ${out}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  // node-gyp ends with lines about its own versions and cwd: the cause is before them.
  const noise = /gyp ERR! (node -v|node-gyp -v|not ok|cwd|command|System|stack)/;
  const stderr = err && typeof err === 'object' && 'stderr' in err && err.stderr ? String(err.stderr).trim().split('\n').filter((l) => !noise.test(l)) : [];
  const detail = stderr.length ? stderr.slice(-2).join(' | ') : String(err instanceof Error ? err.message : err);
  say(`failed (${detail}): using the prebuilt binary, whose watcher thread wakes every 500 ms`);
}
