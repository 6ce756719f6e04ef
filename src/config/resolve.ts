// Validated user config → ResolvedConfig: defaults filled in, durations in ms, sizes in bytes,
// paths absolute, env merged, dependency conditions explicit, units in dependency order, frozen.
//
// Choices worth knowing:
// - `root` is relative to the config file's directory; every other path (cwd, logs.dir, envFile,
//   compose.file, exec probe cwd) is relative to root. `once.inputs` globs stay relative to root.
// - dependsOn as an array: a task must be `completed`, anything else `healthy` (see defaultCondition).
// - `enabled: false` units stay in `units` (shown as disabled). A dependency on a disabled unit
//   counts as satisfied: disabling a unit must never block the rest of the stack.
// - env precedence, later wins: process env < config.env < config envFile < unit.env < unit envFile.
//   The top-level `.env` may be missing (most checkouts have none); any env file named
//   explicitly otherwise — on a unit, or a top-level file not called `.env` — must exist.

import { readFileSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve } from 'node:path';
import { topoOrder } from '../graph.ts';
import { dependencyEntries } from './checks.ts';
import { parseDotenv } from './dotenv.ts';
import { parseDuration } from './duration.ts';
import type { ConfigIssue } from './errors.ts';
import { PROBE_TYPES } from './schema.ts';
import { parseSize } from './size.ts';
import type {
  Duration,
  ProbeSpec,
  ResolvedConfig,
  ResolvedHealthcheck,
  ResolvedRestart,
  ResolvedUnit,
  ResolvedVerifyCheck,
  RestartConfig,
  UnitConfig,
  UnitKind,
  UserConfig,
} from './types.ts';

export interface ResolveOptions {
  /** Absolute path of the config file, or '<inline>'. */
  file: string;
  /** Base directory for `root` when `file` is '<inline>'. */
  cwd: string;
  /** The inherited environment of the children. */
  env: NodeJS.ProcessEnv;
}

export type ResolveResult = { ok: true; config: ResolvedConfig } | { ok: false; issues: ConfigIssue[] };

export const DEFAULTS = Object.freeze({
  logs: { dir: 'logs', maxSize: 10 * 1024 * 1024, keep: 5, ringSize: 10_000, fileMode: 0o600 },
  control: { host: '127.0.0.1', port: 0, allowRemote: false },
  metrics: { public: false },
  composeFile: 'docker-compose.dev.yml',
  envFile: '.env',
  healthcheck: { intervalMs: 1000, timeoutMs: 5000, retries: 3, startPeriodMs: 0 },
  restart: { initialMs: 100, maxMs: 30_000, factor: 2, jitter: 0.1, maxRestarts: 10, windowMs: 5 * 60_000 },
  stop: { signal: 'SIGTERM' as NodeJS.Signals, timeoutMs: 10_000 },
  skipIfTimeoutMs: 5000,
  watchDebounceMs: 300,
  verifyTimeoutMs: 10_000,
});

const TIMING_KEYS = new Set(['interval', 'timeout', 'retries', 'startPeriod']);

function ms(value: Duration | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const r = parseDuration(value);
  // Validation ran before; a bad value here is a bug in the caller, not a user error.
  if (!r.ok) throw new Error(`unvalidated duration: ${r.error}`);
  return r.ms;
}

function stringifyEnv(env: Record<string, string | number | boolean> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) out[k] = String(v);
  return out;
}

/** Compose lowercases project names and drops other characters; match it so names agree. */
export function composeProjectName(dir: string): string {
  return basename(dir).toLowerCase().replace(/[^a-z0-9_-]/g, '').replace(/^[_-]+/, '') || 'default';
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export function resolveUserConfig(user: UserConfig, opts: ResolveOptions): ResolveResult {
  const issues: ConfigIssue[] = [];
  const baseDir = opts.file === '<inline>' ? opts.cwd : resolve(opts.file, '..');
  const root = resolve(baseDir, user.root ?? '.');
  const fromRoot = (p: string): string => resolve(root, p);
  const shown = (p: string): string => {
    const rel = relative(root, p);
    return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
  };

  const readEnvFile = (path: string, at: (string | number)[], optional: boolean): Record<string, string> => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && optional) return {};
      const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (code ?? 'unreadable');
      issues.push({ path: at, message: `cannot read env file ${shown(path)}: ${why} (create it, or fix or remove ${at.join('.')})` });
      return {};
    }
    const parsed = parseDotenv(text);
    if (!parsed.ok) {
      for (const e of parsed.errors) issues.push({ path: at, message: `${shown(path)} ${e}` });
      return {};
    }
    return parsed.vars;
  };

  const topEnvFileName = user.envFile ?? DEFAULTS.envFile;
  const topEnvFile = readEnvFile(fromRoot(topEnvFileName), ['envFile'], topEnvFileName === DEFAULTS.envFile);
  const topConfigEnv = { ...stringifyEnv(user.env), ...topEnvFile };
  const inherited: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined) inherited[k] = v;

  const composeFile = fromRoot(user.compose?.file ?? DEFAULTS.composeFile);
  const composeProject = user.compose?.project ?? composeProjectName(root);

  const units: Record<string, ResolvedUnit> = {};
  for (const [name, unit] of Object.entries(user.units)) {
    const kind: UnitKind = unit.kind ?? 'process';
    const unitFileEnv = unit.envFile ? readEnvFile(fromRoot(unit.envFile), ['units', name, 'envFile'], false) : {};
    const configEnv = { ...topConfigEnv, ...stringifyEnv(unit.env), ...unitFileEnv };
    const common = resolveCommon(name, unit, kind, user.units, { ...inherited, ...configEnv }, configEnv, fromRoot);
    units[name] = resolveKind(unit, common, fromRoot, root, composeFile, composeProject);
  }

  if (issues.length > 0) return { ok: false, issues };

  const verify = (user.verify ?? []).map(resolveVerifyCheck);

  const config: ResolvedConfig = {
    file: opts.file,
    root,
    logs: {
      dir: fromRoot(user.logs?.dir ?? DEFAULTS.logs.dir),
      maxSizeBytes: user.logs?.maxSize !== undefined ? sizeOrThrow(user.logs.maxSize) : DEFAULTS.logs.maxSize,
      keep: user.logs?.keep ?? DEFAULTS.logs.keep,
      ringSize: user.logs?.ringSize ?? DEFAULTS.logs.ringSize,
      fileMode: user.logs?.fileMode ?? DEFAULTS.logs.fileMode,
    },
    control: {
      host: user.control?.host ?? DEFAULTS.control.host,
      port: user.control?.port ?? DEFAULTS.control.port,
      allowRemote: user.control?.allowRemote ?? DEFAULTS.control.allowRemote,
    },
    metrics: { public: user.metrics?.public ?? DEFAULTS.metrics.public },
    stateDir: resolve(root, '.supervisor'),
    units,
    order: topoOrder(units),
    verify,
    reload: user.reload ?? true,
    envFiles: [...new Set([fromRoot(topEnvFileName), ...Object.values(user.units).flatMap((u) => (u.envFile ? [fromRoot(u.envFile)] : []))])],
  };
  return { ok: true, config: deepFreeze(config) };
}

/** What every kind of unit has, resolved (paths from root, durations in ms, defaults filled in). */
function resolveCommon(
  name: string,
  unit: UserConfig['units'][string],
  kind: UnitKind,
  all: UserConfig['units'],
  env: Record<string, string>,
  configEnv: Record<string, string>,
  fromRoot: (p: string) => string,
) {
  return {
    name,
    enabled: unit.enabled ?? true,
    description: unit.description,
    env,
    configEnv,
    dependsOn: Object.fromEntries(dependencyEntries(unit, all)),
    healthcheck: resolveHealthcheck(unit, fromRoot),
    restart: resolveRestart(unit.restart, kind),
    stop: { signal: unit.stop?.signal ?? DEFAULTS.stop.signal, timeoutMs: ms(unit.stop?.timeout, DEFAULTS.stop.timeoutMs) },
    onDependencyFailure: unit.onDependencyFailure ?? 'wait',
    requires: (unit.requires ?? []).map((r) => ({
      file: fromRoot(r.file),
      hint: r.hint,
      create: r.create && { ...r.create },
      template: r.template === undefined ? undefined : fromRoot(r.template),
      expect: { ...(r.expect ?? {}) },
    })),
    watch: unit.watch && {
      paths: [...unit.watch.paths],
      ignore: [...(unit.watch.ignore ?? [])],
      debounceMs: ms(unit.watch.debounce, DEFAULTS.watchDebounceMs),
      cascade: unit.watch.cascade ?? false,
    },
  };
}

function resolveVerifyCheck(c: NonNullable<UserConfig['verify']>[number]): ResolvedVerifyCheck {
  return {
    name: c.name,
    method: (c.method ?? (c.body !== undefined ? 'POST' : 'GET')).toUpperCase(),
    url: c.url ?? '',
    browser: c.browser && { url: c.browser.url, steps: [...(c.browser.steps ?? [])], executablePath: c.browser.executablePath },
    hint: c.hint,
    headers: { ...(c.headers ?? {}) },
    body: c.body,
    expectStatus: c.expectStatus,
    expect: { ...(c.expect ?? {}) },
    timeoutMs: ms(c.timeout, DEFAULTS.verifyTimeoutMs),
  };
}

function sizeOrThrow(value: string | number): number {
  const r = parseSize(value);
  if (!r.ok) throw new Error(`unvalidated size: ${r.error}`);
  return r.bytes;
}

type Common = Omit<ResolvedUnit, 'kind' | 'command' | 'cwd' | 'postgres' | 'once' | 'service' | 'file' | 'project'>;

function resolveKind(
  unit: UnitConfig,
  common: Common,
  fromRoot: (p: string) => string,
  root: string,
  composeFile: string,
  composeProject: string,
): ResolvedUnit {
  switch (unit.kind) {
    case 'task': {
      const once = unit.once === true ? {} : unit.once === false || unit.once === undefined ? undefined : unit.once;
      return {
        ...common,
        kind: 'task',
        command: unit.command,
        cwd: unit.cwd ? fromRoot(unit.cwd) : root,
        optional: unit.optional ?? false,
        postgres: unit.postgres ? { url: unit.postgres.url, ensureDatabases: [...(unit.postgres.ensureDatabases ?? [])] } : undefined,
        once: once && {
          inputs: [...(once.inputs ?? [])],
          outputs: [...(once.outputs ?? [])],
          skipIf: once.skipIf && { ...probeOf(once.skipIf, fromRoot), timeoutMs: ms(once.skipIf.timeout, DEFAULTS.skipIfTimeoutMs) },
        },
      };
    }
    case 'compose':
      return {
        ...common,
        kind: 'compose',
        service: unit.service,
        file: unit.file ? fromRoot(unit.file) : composeFile,
        project: unit.project ?? composeProject,
      };
    default:
      return { ...common, kind: 'process', command: unit.command, cwd: unit.cwd ? fromRoot(unit.cwd) : root, tty: unit.tty ?? false };
  }
}

/** The probe fields of a healthcheck or skipIf object, without its timing. */
function probeOf(spec: object, fromRoot: (p: string) => string): ProbeSpec {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) if (!TIMING_KEYS.has(k)) out[k] = v;
  if ('exec' in out && typeof out.cwd === 'string') out.cwd = fromRoot(out.cwd);
  // The shape was validated (exactly one of PROBE_TYPES is present).
  if (!PROBE_TYPES.some((t) => t in out)) throw new Error('unvalidated probe');
  return out as unknown as ProbeSpec;
}

function resolveHealthcheck(unit: UnitConfig, fromRoot: (p: string) => string): ResolvedHealthcheck | undefined {
  const hc = unit.healthcheck;
  if (!hc) return undefined;
  const d = DEFAULTS.healthcheck;
  return {
    probe: probeOf(hc, fromRoot),
    intervalMs: ms(hc.interval, d.intervalMs),
    timeoutMs: ms(hc.timeout, d.timeoutMs),
    retries: hc.retries ?? d.retries,
    startPeriodMs: ms(hc.startPeriod, d.startPeriodMs),
  };
}

function resolveRestart(r: RestartConfig | undefined, kind: UnitKind): ResolvedRestart {
  const d = DEFAULTS.restart;
  return {
    policy: r?.policy ?? (kind === 'task' ? 'never' : 'on-failure'),
    initialMs: ms(r?.backoff?.initial, d.initialMs),
    maxMs: ms(r?.backoff?.max, d.maxMs),
    factor: r?.backoff?.factor ?? d.factor,
    jitter: r?.backoff?.jitter ?? d.jitter,
    maxRestarts: r?.maxRestarts ?? d.maxRestarts,
    windowMs: ms(r?.window, d.windowMs),
  };
}
