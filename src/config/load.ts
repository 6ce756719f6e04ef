// Finding, importing and checking `supervisor.config.ts`. The file is real TypeScript, imported
// with tsx so there is no build step; its default export is the config or a (sync/async)
// function returning it. Every failure — no file, a syntax error, a bad value — comes back as
// `{ ok: false, errors }`, one line per problem, each naming the file.

import { fork } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isPlainObject } from '../util/plain-object.ts';
import { redactText } from '../util/redact.ts';
import { configSources } from './sources.ts';
import type { ResolvedConfig } from './types.ts';
import type { Dep } from './deps.ts';
import { displayPath, findConfigFile, type LoadOptions } from './find.ts';
import { findMemo, memoResolved, resolvedStamp, storeMemo } from './memo.ts';

export { CONFIG_FILE_NAMES, displayPath, findConfigFile, type FindResult, type LoadOptions } from './find.ts';

/** `sources`: the config file and the files it imported (absolute; not node_modules, not bk-supervisor itself). */
export type ConfigResult = { ok: true; config: ResolvedConfig; sources?: string[] } | { ok: false; errors: string[]; sources?: string[] };

function errorText(err: unknown, file: string, shown: string): string {
  const text = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
  const lines = text
    .replace(/\?(?:tsx-)?namespace=[\w-]+/g, '')
    .split(file)
    .join(shown)
    .split('\n')
    .filter((l) => l.trim() !== '');
  // esbuild: "Transform failed with N error(s):" then "<file>:<line>:<col>: ERROR: <what>" per error.
  const syntax = lines.map((l) => /^(.*:\d+:\d+): ERROR: (.*)$/.exec(l)).filter((m) => m !== null);
  if (syntax.length > 0) return redactText(`syntax error: ${syntax.map((m) => `${m[2] as string} at ${m[1] as string}`).join('; ')}`);
  return redactText(lines.slice(0, 6).join(' | '));
}

/** The config module's default export, evaluated (a function is called), or why not. */
export type ImportedConfig = { ok: true; value: unknown; sources: string[] } | { ok: false; errors: string[]; sources: string[] };

/** This package's own sources: a config importing `defineConfig` from them does not make them config. */
const OWN_SOURCES = fileURLToPath(new URL('../', import.meta.url));

/** Imports the config file with tsx in this process and evaluates its default export. */
export async function importConfigValue(file: string, shown: string): Promise<ImportedConfig> {
  let mod: Record<string, unknown>;
  const sources = configSources(file, OWN_SOURCES);
  try {
    // Loaded only here: tsx's loader (a hooks thread and an esbuild service process, ~40 MiB)
    // is only paid for by a process that imports a config.
    const { tsImport } = await import('tsx/esm/api');
    // tsconfig: false — the user's project tsconfig (paths, jsx, …) has no say over this one file.
    mod = (await tsImport(pathToFileURL(file).href, { parentURL: import.meta.url, tsconfig: false })) as Record<string, unknown>;
  } catch (err) {
    return { ok: false, errors: [`${shown}: cannot load the config: ${errorText(err, file, shown)} (fix the file or what it imports)`], sources };
  }

  let value = mod.default;
  // A file compiled as CommonJS (no "type": "module" nearby) arrives as module.exports with an
  // __esModule marker; its own default export is inside.
  if (isPlainObject(value) && value.__esModule === true) value = value.default;
  if (value === undefined) {
    const named = Object.keys(mod).filter((k) => k !== 'default' && k !== '__esModule');
    const hint = named.length > 0 ? `; found only named exports: ${named.join(', ')}` : '';
    return { ok: false, errors: [`${shown}: no default export (end the file with: export default defineConfig({ units: { ... } })${hint})`], sources };
  }
  if (typeof value === 'function') {
    try {
      value = await (value as () => unknown)();
    } catch (err) {
      return { ok: false, errors: [`${shown}: the config function threw: ${errorText(err, file, shown)}`], sources };
    }
  }
  return { ok: true, value, sources };
}

/**
 * The compiled CLI (bin/bksup.js → dist/) sets this to its config-child entry, so that a
 * long-running daemon never loads tsx or the validator itself: the config is imported and
 * checked in a short-lived child process, and the resolved config (or the errors) comes back by
 * structured clone (plain data, RegExp, Date, Map… pass; functions cannot). Unset (tests, the
 * tsx fallback): both happen in this process.
 */
const CHILD_ENTRY = Symbol.for('bk-supervisor.configChildEntry');

/** What the loader child sends back: the result and, when it is ok, what the evaluation read. */
export interface ChildAnswer {
  result: ConfigResult;
  deps?: Dep[];
  resolvedDeps?: Dep[];
}

const OUTPUT_CAP = 64 * 1024;

function importInChild(entry: string, file: string, shown: string, opts: LoadOptions): Promise<ConfigResult> {
  const env = opts.env ?? process.env;
  return new Promise((resolve) => {
    let got: ChildAnswer | undefined;
    const output = { stdout: '', stderr: '' };
    const child = fork(entry, [file, shown, opts.cwd], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [], env });
    // What the config prints is passed on (unless quiet) and kept, to be replayed when the memo is used.
    for (const name of ['stdout', 'stderr'] as const) {
      child[name]!.on('data', (d: Buffer) => {
        if (!opts.quiet) process[name].write(d);
        if (output[name].length < OUTPUT_CAP) output[name] += d.toString();
      });
    }
    child.once('message', (m) => (got = m as ChildAnswer));
    child.once('error', (err) => resolve({ ok: false, errors: [`${shown}: cannot load the config: could not start the loader process (${err.message})`] }));
    child.once('exit', (code, signal) => {
      if (!got) return resolve({ ok: false, errors: [`${shown}: cannot load the config: the loader process ended (${signal ?? `exit code ${code}`}) without an answer`] });
      const { result, deps, resolvedDeps } = got;
      if (result.ok && deps && resolvedDeps) {
        const config = result.config;
        const resolved = resolvedStamp({ tool: toolStamp(entry), cwd: opts.cwd, env }, resolvedDeps);
        storeMemo(file, { deps, root: config.root, stateDir: config.stateDir, output, resolved, ...(result.sources ? { sources: result.sources } : {}) }, config, env);
      }
      resolve(result);
    });
  });
}

/** This build of the CLI: the loader child's bundle is rewritten whenever src/ changes. */
function toolStamp(entry: string): string {
  try {
    return `${entry}@${statSync(entry).mtimeMs}`;
  } catch {
    return entry;
  }
}

/** The memo's resolved config for this load, its recorded output replayed (unless quiet). */
function fromMemo(entry: string, file: string, opts: LoadOptions): ConfigResult | undefined {
  const env = opts.env ?? process.env;
  const hit = findMemo(file, env);
  const config = hit && memoResolved(file, hit, { tool: toolStamp(entry), cwd: opts.cwd, env });
  if (!hit || !config) return undefined;
  if (!opts.quiet) {
    if (hit.output.stdout) process.stdout.write(hit.output.stdout);
    if (hit.output.stderr) process.stderr.write(hit.output.stderr);
  }
  return { ok: true, config, ...(hit.sources ? { sources: hit.sources } : {}) };
}

/**
 * The validator (zod and the schema, ~3 MiB resident) is loaded only where the config is
 * checked: in the loader child of the compiled CLI, so the daemon never holds it. The specifier
 * is computed so that esbuild leaves it out of the daemon's bundle; it is only taken when the
 * sources run through tsx (tests, the fallback of bin/bksup.js).
 */
async function validateHere(): Promise<typeof import('./validate.ts')> {
  return (await import(new URL('./validate.ts', import.meta.url).href)) as typeof import('./validate.ts');
}

export async function loadConfig(opts: LoadOptions): Promise<ConfigResult> {
  const found = findConfigFile(opts);
  if (!found.ok) return { ok: false, errors: [found.error] };
  const file = found.file;
  const shown = displayPath(file, opts.cwd);

  const entry = (globalThis as Record<symbol, unknown>)[CHILD_ENTRY];
  if (typeof entry === 'string') return (!opts.fresh && fromMemo(entry, file, opts)) || importInChild(entry, file, shown, opts);
  const imported = await importConfigValue(file, shown);
  if (!imported.ok) return imported;
  const { validateImported } = await validateHere();
  return { ...validateImported(imported.value, { file, cwd: opts.cwd, env: opts.env ?? process.env }), sources: imported.sources };
}
