// File watches for units: one @parcel/watcher subscription per base directory of the units'
// globs (nested bases share the outer one), events routed to each unit whose globs match,
// gathered per unit into bursts (src/watch/debounce.ts).
//
// @parcel/watcher keeps one inotify watch per directory (not per file, as chokidar does) and
// skips ignored directories while crawling, so a BK-Lite checkout costs a watch per source
// directory, never one per file of node_modules or .venv. Which binary: src/watch/binding.ts.

import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import picomatch from 'picomatch';
import { watcherBinding } from './binding.ts';
import { Burst } from './debounce.ts';
import { defaultIgnored, watcherIgnores } from './ignores.ts';

export interface WatchTarget {
  unit: string;
  /** Globs relative to root. */
  paths: readonly string[];
  ignore: readonly string[];
  debounceMs: number;
  /** Paths relative to root, sorted, one call per burst. */
  onChange: (paths: string[]) => void;
}

export interface TreeWatcherOptions {
  root: string;
  logsDir: string;
  stateDir: string;
  targets: readonly WatchTarget[];
  onError?: (message: string) => void;
}

interface Route {
  target: WatchTarget;
  match: (rel: string) => boolean;
  ignored: (rel: string) => boolean;
  burst: Burst;
}

type Subscription = { unsubscribe(): Promise<void> };

/** Directory to watch for one glob: its static prefix (a plain path that is a file: its directory). */
export function globBase(root: string, pattern: string): string {
  const scan = picomatch.scan(pattern);
  let base = resolve(root, scan.base || '.');
  if (!scan.isGlob) {
    try {
      if (!statSync(base).isDirectory()) base = dirname(base);
    } catch {
      base = dirname(base);
    }
  }
  // A directory that does not exist yet: watch the nearest one that does (it may be created).
  while (!existsSync(base) && dirname(base) !== base) base = dirname(base);
  return base;
}

/** Outermost directories only: a base inside another one is covered by it. */
export function outermost(dirs: readonly string[]): string[] {
  const sorted = [...new Set(dirs)].sort();
  const out: string[] = [];
  for (const d of sorted) if (!out.some((o) => d === o || d.startsWith(o.endsWith(sep) ? o : o + sep))) out.push(d);
  return out;
}

function matcherOf(patterns: readonly string[]): (rel: string) => boolean {
  // A plain path also matches everything below it (`paths: ['server/apps']`).
  const expanded = patterns.flatMap((p) => (picomatch.scan(p).isGlob ? [p] : [p, `${p.replace(/\/+$/, '')}/**`]));
  return expanded.length ? picomatch(expanded, { dot: true }) : () => false;
}

export class TreeWatcher {
  readonly #opts: TreeWatcherOptions;
  readonly #routes: Route[];
  readonly #ignored: (abs: string) => boolean;
  #subs: Subscription[] = [];
  #closed = false;

  constructor(opts: TreeWatcherOptions) {
    this.#opts = opts;
    this.#ignored = defaultIgnored(opts.logsDir, opts.stateDir);
    this.#routes = opts.targets.map((target) => ({
      target,
      match: matcherOf(target.paths),
      ignored: matcherOf(target.ignore),
      burst: new Burst(target.debounceMs, (paths) => target.onChange(paths)),
    }));
  }

  /** Directories with a subscription (after start). */
  bases(): string[] {
    return outermost(this.#opts.targets.flatMap((t) => t.paths.map((p) => globBase(this.#opts.root, p))));
  }

  /** Resolves once every base is watched: a change made after this is seen. */
  async start(): Promise<void> {
    if (this.#routes.length === 0) return;
    const watcher = await watcherBinding();
    const ignore = watcherIgnores(this.#opts.logsDir, this.#opts.stateDir);
    for (const base of this.bases()) {
      try {
        const sub = await watcher.subscribe(base, (err, events) => {
          if (err) this.#opts.onError?.(`watching ${base}: ${err.message}`);
          else this.#dispatch(events.map((e) => e.path));
        }, { ignore });
        if (this.#closed) await sub.unsubscribe();
        else this.#subs.push(sub);
      } catch (err) {
        this.#opts.onError?.(`cannot watch ${base}: ${err instanceof Error ? err.message : String(err)} (watch.paths of ${this.#unitsUnder(base).join(', ')})`);
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const r of this.#routes) r.burst.cancel();
    const subs = this.#subs;
    this.#subs = [];
    await Promise.all(subs.map((s) => s.unsubscribe().catch(() => {})));
  }

  /**
   * What each unit's burst holds and has not fired yet, taken away from this watcher: a reload
   * replaces the watcher, and an edit saved within a unit's quiet time must still restart it.
   */
  takePending(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.#routes) {
      const paths = r.burst.take();
      if (paths.length) out.set(r.target.unit, [...(out.get(r.target.unit) ?? []), ...paths]);
    }
    return out;
  }

  /** Another watcher's pending paths, for the units this one still watches, by this one's globs. */
  adopt(pending: ReadonlyMap<string, readonly string[]>): void {
    if (this.#closed) return;
    for (const r of this.#routes) {
      const paths = (pending.get(r.target.unit) ?? []).filter((p) => r.match(p) && !r.ignored(p));
      if (paths.length) r.burst.add(paths);
    }
  }

  #dispatch(absPaths: readonly string[]): void {
    if (this.#closed) return;
    const perRoute = new Map<Route, string[]>();
    for (const abs of absPaths) {
      if (this.#ignored(abs)) continue;
      const rel = relative(this.#opts.root, abs);
      // Outside root (an absolute glob): keep the absolute path, the globs were written that way.
      const shown = rel.startsWith('..') || isAbsolute(rel) ? abs : rel.split(sep).join('/');
      for (const r of this.#routes) {
        if (!r.match(shown) || r.ignored(shown)) continue;
        const list = perRoute.get(r) ?? [];
        list.push(shown);
        perRoute.set(r, list);
      }
    }
    for (const [r, paths] of perRoute) r.burst.add(paths);
  }

  #unitsUnder(base: string): string[] {
    return this.#opts.targets.filter((t) => t.paths.some((p) => globBase(this.#opts.root, p).startsWith(base))).map((t) => t.unit);
  }
}
