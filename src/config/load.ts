// Finding, importing and checking `supervisor.config.ts`. The file is real TypeScript, imported
// with tsx so there is no build step; its default export is the config or a (sync/async)
// function returning it. Every failure — no file, a syntax error, a bad value — comes back as
// `{ ok: false, errors }`, one line per problem, each naming the file.

import { fork } from 'node:child_process';
import { statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isPlainObject } from '../util/plain-object.ts';
import { redactText } from '../util/redact.ts';
import { configSources } from './sources.ts';
import type { ResolvedConfig } from './types.ts';

export const CONFIG_FILE_NAMES = ['supervisor.config.ts', 'supervisor.config.mts', 'supervisor.config.js', 'supervisor.config.mjs'] as const;

/** `sources`: the config file and the files it imported (absolute; not node_modules, not bk-supervisor itself). */
export type ConfigResult = { ok: true; config: ResolvedConfig; sources?: string[] } | { ok: false; errors: string[]; sources?: string[] };

export interface LoadOptions {
  /** Where to look for the config file and what relative paths are relative to. */
  cwd: string;
  /** An explicit file (or a directory holding one), e.g. from `--config`. */
  configPath?: string;
  /** Environment: SUPERVISOR_CONFIG is read from it, and children inherit it (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** How a file is named in messages: relative to cwd when inside it. */
export function displayPath(file: string, cwd: string): string {
  if (file === '<inline>') return file;
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function kindOfPath(path: string): 'file' | 'dir' | 'missing' {
  try {
    return statSync(path).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

export type FindResult = { ok: true; file: string } | { ok: false; error: string };

/** opts.configPath, else $SUPERVISOR_CONFIG, else supervisor.config.{ts,mts,js,mjs} in cwd. */
export function findConfigFile(opts: LoadOptions): FindResult {
  const env = opts.env ?? process.env;
  const explicit = opts.configPath ?? (env.SUPERVISOR_CONFIG || undefined);
  const via = opts.configPath !== undefined ? '--config' : 'SUPERVISOR_CONFIG';
  const searchIn = (dir: string): FindResult => {
    for (const name of CONFIG_FILE_NAMES) {
      const file = join(dir, name);
      if (kindOfPath(file) === 'file') return { ok: true, file };
    }
    return { ok: false, error: `no supervisor.config.ts in ${dir}: create one (see README) or pass --config` };
  };
  if (explicit === undefined) return searchIn(resolve(opts.cwd));
  const path = resolve(opts.cwd, explicit);
  switch (kindOfPath(path)) {
    case 'file':
      return { ok: true, file: path };
    case 'dir':
      return searchIn(path);
    default:
      return { ok: false, error: `${displayPath(path, opts.cwd)}: config file not found (check ${via})` };
  }
}

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

function importInChild(entry: string, file: string, shown: string, opts: LoadOptions): Promise<ConfigResult> {
  return new Promise((resolve) => {
    let got: ConfigResult | undefined;
    const child = fork(entry, [file, shown, opts.cwd], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [], env: opts.env ?? process.env });
    child.once('message', (m) => (got = m as ConfigResult));
    child.once('error', (err) => resolve({ ok: false, errors: [`${shown}: cannot load the config: could not start the loader process (${err.message})`] }));
    child.once('exit', (code, signal) => resolve(got ?? { ok: false, errors: [`${shown}: cannot load the config: the loader process ended (${signal ?? `exit code ${code}`}) without an answer`] }));
  });
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
  if (typeof entry === 'string') return importInChild(entry, file, shown, opts);
  const imported = await importConfigValue(file, shown);
  if (!imported.ok) return imported;
  const { validateImported } = await validateHere();
  return { ...validateImported(imported.value, { file, cwd: opts.cwd, env: opts.env ?? process.env }), sources: imported.sources };
}
