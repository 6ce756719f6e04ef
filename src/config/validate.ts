// Checking a config value (what a config file's default export gives) and resolving it into the
// daemon's ResolvedConfig: structure (zod schema), cross-references, then defaults and paths.
// Kept apart from load.ts because it is what pulls zod in: the compiled CLI runs it in the
// config loader child only (src/config/child.ts).

import { resolve } from 'node:path';
import { crossIssues } from './checks.ts';
import { describeType } from './duration.ts';
import { type ConfigIssue, formatIssue } from './errors.ts';
import { type ConfigResult, displayPath } from './load.ts';
import { resolveUserConfig } from './resolve.ts';
import { asUserConfig, isPlainObject, structuralIssues } from './schema.ts';

export interface ResolveConfigOptions {
  /** The config file the value came from (for error messages and as the base of `root`), or '<inline>'. */
  file: string;
  /** Base of relative paths for display and for an '<inline>' config (default process.cwd()). */
  cwd?: string;
  /** Inherited environment of the children (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The evaluated default export of a config file, checked and resolved. */
export function validateImported(value: unknown, opts: ResolveConfigOptions): ConfigResult {
  if (!isPlainObject(value)) {
    const shown = displayPath(opts.file, resolve(opts.cwd ?? process.cwd()));
    return {
      ok: false,
      errors: [`${shown}: the default export is ${describeType(value)}, expected an object or a function returning one (export default defineConfig({ units: { ... } }))`],
    };
  }
  return resolveConfig(value, opts);
}

/** Validates and resolves a config value (what a config file's default export gives). */
export function resolveConfig(user: unknown, opts: ResolveConfigOptions): ConfigResult {
  const cwd = resolve(opts.cwd ?? process.cwd());
  const file = opts.file === '<inline>' ? opts.file : resolve(cwd, opts.file);
  const shown = displayPath(file, cwd);
  const format = (issues: ConfigIssue[]): string[] => [...new Set(issues.map((i) => formatIssue(shown, i)))];

  const issues = [...structuralIssues(user), ...crossIssues(user)];
  if (issues.length > 0) return { ok: false, errors: format(issues) };

  const resolved = resolveUserConfig(asUserConfig(user), { file, cwd, env: opts.env ?? process.env });
  return resolved.ok ? resolved : { ok: false, errors: format(resolved.issues) };
}
