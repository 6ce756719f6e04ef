// Two shapes of the same config: what a user writes (`UserConfig`, loose: strings for
// durations and sizes, optional everything) and what the rest of the code reads
// (`ResolvedConfig`: milliseconds, bytes, absolute paths, every default filled in, frozen).
// Only src/config/ turns one into the other.

/** `'100ms'`, `'10s'`, `'5m'`, `'1h'` or a number of milliseconds. */
export type Duration = string | number;
/** `'10MB'`, `'512KB'`, `'1GB'` or a number of bytes. */
export type Size = string | number;

export type DependencyCondition = 'started' | 'healthy' | 'completed';
export type RestartPolicyName = 'always' | 'on-failure' | 'never';
export type UnitKind = 'process' | 'task' | 'compose';

export interface HealthTiming {
  /** Time between probe attempts (default 1s). */
  interval?: Duration;
  /** Bound on one attempt (default 5s). */
  timeout?: Duration;
  /** Failures in a row, after the first pass, that make the unit unhealthy (default 3). */
  retries?: number;
  /** Grace time after start: failures do not count; if no attempt passed by its end the unit is unhealthy. */
  startPeriod?: Duration;
}

export interface HttpProbe { http: string; method?: string; expectStatus?: number | number[]; headers?: Record<string, string> }
export interface TcpProbe { tcp: string | number } // 'host:port' or a port on 127.0.0.1
export interface ExecProbe { exec: string | string[]; cwd?: string }
export interface LogProbe { log: string } // regex over the unit's own output lines
export interface PostgresProbe { postgres: string; query?: string }
export interface NatsRequestCheck { subject: string; payload?: unknown; expect?: unknown }
export interface NatsProbe { nats: string; jetstream?: boolean; request?: NatsRequestCheck; user?: string; pass?: string; token?: string }
export interface RedisProbe { redis: string; password?: string }
export interface DockerProbe { docker: string | true } // container name/id, or true = this compose unit's container

export type ProbeSpec = HttpProbe | TcpProbe | ExecProbe | LogProbe | PostgresProbe | NatsProbe | RedisProbe | DockerProbe;
export type HealthcheckConfig = ProbeSpec & HealthTiming;

export interface RestartConfig {
  policy?: RestartPolicyName;
  backoff?: { initial?: Duration; max?: Duration; factor?: number; jitter?: number };
  /** More than this many restarts inside `window` is a crash loop: the unit becomes `failed`. */
  maxRestarts?: number;
  window?: Duration;
}

export interface StopConfig { signal?: NodeJS.Signals; timeout?: Duration }

export interface OnceConfig {
  /** Globs (relative to root) whose file contents are part of the fingerprint. */
  inputs?: string[];
  /** A probe: when it passes, the task is skipped. */
  skipIf?: ProbeSpec & { timeout?: Duration };
  /** Paths (relative to root) the task creates: when one is missing it runs again (`.venv`, `node_modules`). */
  outputs?: string[];
}

export interface PostgresTaskConfig { url: string; ensureDatabases?: string[] }

interface UnitCommon {
  kind?: UnitKind;
  enabled?: boolean;
  description?: string;
  env?: Record<string, string | number | boolean>;
  envFile?: string;
  dependsOn?: Record<string, DependencyCondition> | string[];
  healthcheck?: HealthcheckConfig;
  restart?: RestartConfig;
  stop?: StopConfig;
  /**
   * When a dependency this unit needs `healthy` stops being healthy (unhealthy, restarting,
   * stopped): `restart` stops this unit and starts it again once the dependency is healthy;
   * `wait` (default) keeps it running and notes the dependency in its status; `ignore` does nothing.
   */
  onDependencyFailure?: DependencyFailurePolicy;
  /** Files that must exist before the unit can work (checked by preflight), e.g. `server/.env`. */
  requires?: RequiredFile[];
  /** Restart the unit when files matching `paths` change (see WatchConfig). */
  watch?: WatchConfig;
}

/** A file a unit needs; with `create`/`expect` it is a dotenv file the supervisor writes and cross-checks. */
export interface RequiredFile {
  file: string;
  hint?: string;
  /** When the file is missing, `up` writes it: `template`'s lines (if it exists) with these keys filled, then the rest. Never overwrites. */
  create?: Record<string, string>;
  /** A dotenv file to start from when creating (relative to root), e.g. `server/envs/.env.example`. */
  template?: string;
  /** When the file exists: keys whose value must point at the stack (URLs compare scheme, host, port, user, password). */
  expect?: Record<string, string>;
}

export interface WatchConfig {
  /** Globs relative to root, e.g. ['server/**\/*.py']. */
  paths: string[];
  /** Globs relative to root, on top of the default ignores (.git, node_modules, .venv, __pycache__, *.pyc, logs, .supervisor). */
  ignore?: string[];
  /** Quiet time that ends a burst of changes (default 300ms): one restart per burst. */
  debounce?: Duration;
  /** Also restart the units that depend on this one, in graph order. */
  cascade?: boolean;
}

export type DependencyFailurePolicy = 'restart' | 'wait' | 'ignore';

export interface ProcessUnitConfig extends UnitCommon {
  kind?: 'process';
  /** A string runs through /bin/sh -c; an array is argv. */
  command: string | string[];
  cwd?: string;
  /** Run on a pseudo-terminal, for `bksup attach <unit>` (pdb at a breakpoint()); output is still logged. */
  tty?: boolean;
}

export interface TaskUnitConfig extends UnitCommon {
  kind: 'task';
  command?: string | string[];
  cwd?: string;
  postgres?: PostgresTaskConfig;
  once?: boolean | OnceConfig;
  /** Its failure is reported (state `failed`, a warning in `status`) but blocks nothing: `completed` dependents and verify go on. */
  optional?: boolean;
}

export interface ComposeUnitConfig extends UnitCommon {
  kind: 'compose';
  service: string;
  file?: string;
  project?: string;
}

export type UnitConfig = ProcessUnitConfig | TaskUnitConfig | ComposeUnitConfig;

/** A matcher in `VerifyCheck.expect`; several keys must all hold. */
export interface VerifyMatcher { contains?: unknown; exists?: boolean; matches?: string; equals?: unknown }

/** A step of a `browser` check, run in order on the page (selectors are CSS, or Playwright's text=… / role=…). */
export type BrowserStep =
  | { waitForText: string }
  | { fill: string; value: string }
  | { click: string }
  /** Waits until the page's URL no longer matches the regex (e.g. left the sign-in page). */
  | { waitForUrlNot: string };

export interface BrowserCheck {
  url: string;
  steps?: BrowserStep[];
  /** The Chromium to drive (default /usr/bin/chromium, or $BKSUP_CHROMIUM); none installed → the check is skipped. */
  executablePath?: string;
}

export interface VerifyCheck {
  name: string;
  method?: string;
  /** An HTTP check (one of url / browser). */
  url?: string;
  /** A headless-Chromium check (playwright-core, never downloads a browser). */
  browser?: BrowserCheck;
  /** Said after a failure: what to look at (e.g. which setting the request went through). */
  hint?: string;
  headers?: Record<string, string>;
  body?: unknown;
  expectStatus?: number;
  /**
   * Dotted paths into the JSON reply → expected value (deep equality), or a matcher:
   * `{ contains: x }` (array element / substring), `{ exists: true }`, `{ matches: 'regex' }`,
   * `{ equals: x }`. See src/verify.ts.
   */
  expect?: Record<string, unknown | VerifyMatcher>;
  timeout?: Duration;
}

export interface UserConfig {
  root?: string;
  env?: Record<string, string | number | boolean>;
  envFile?: string;
  /** `fileMode`: of every log file (default 0o600, directory 0o700); e.g. 0o640 lets the group read them. */
  logs?: { dir?: string; maxSize?: Size; keep?: number; ringSize?: number; fileMode?: number };
  control?: { host?: string; port?: number; allowRemote?: boolean };
  /** `/metrics` on the control port; `public: true` lets scrapers on this machine in without the token. */
  metrics?: { public?: boolean };
  compose?: { file?: string; project?: string };
  units: Record<string, UnitConfig>;
  /** Apply config edits (this file, its imports, env files) to the running daemon; default true. */
  reload?: boolean;
  verify?: VerifyCheck[];
}

export type ConfigInput = UserConfig | (() => UserConfig | Promise<UserConfig>);

// ---------------------------------------------------------------- resolved

export interface ResolvedHealthcheck {
  probe: ProbeSpec;
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

export interface ResolvedRestart {
  policy: RestartPolicyName;
  initialMs: number;
  maxMs: number;
  factor: number;
  jitter: number;
  maxRestarts: number;
  windowMs: number;
}

interface ResolvedUnitCommon {
  name: string;
  enabled: boolean;
  description: string | undefined;
  /** Full environment for the child: process.env < config.env < envFile < unit.env < unit envFile. */
  env: Readonly<Record<string, string>>;
  /** Only the variables the config set (for fingerprints and display), not the inherited process env. */
  configEnv: Readonly<Record<string, string>>;
  dependsOn: Readonly<Record<string, DependencyCondition>>;
  healthcheck: ResolvedHealthcheck | undefined;
  restart: ResolvedRestart;
  stop: { signal: NodeJS.Signals; timeoutMs: number };
  onDependencyFailure: DependencyFailurePolicy;
  /** Absolute paths, with the fix to show when missing. */
  requires: readonly ResolvedRequiredFile[];
  watch: ResolvedWatch | undefined;
}

export interface ResolvedRequiredFile {
  file: string;
  hint: string | undefined;
  create: Readonly<Record<string, string>> | undefined;
  template: string | undefined;
  expect: Readonly<Record<string, string>>;
}

export interface ResolvedWatch {
  paths: readonly string[];
  ignore: readonly string[];
  debounceMs: number;
  cascade: boolean;
}

export interface ResolvedProcessUnit extends ResolvedUnitCommon {
  kind: 'process';
  command: string | readonly string[];
  cwd: string;
  tty: boolean;
}

export interface ResolvedTaskUnit extends ResolvedUnitCommon {
  kind: 'task';
  command: string | readonly string[] | undefined;
  cwd: string;
  postgres: PostgresTaskConfig | undefined;
  once: { inputs: readonly string[]; outputs: readonly string[]; skipIf: (ProbeSpec & { timeoutMs: number }) | undefined } | undefined;
  optional: boolean;
}

export interface ResolvedComposeUnit extends ResolvedUnitCommon {
  kind: 'compose';
  service: string;
  file: string;
  project: string;
}

export type ResolvedUnit = ResolvedProcessUnit | ResolvedTaskUnit | ResolvedComposeUnit;

export interface ResolvedVerifyCheck {
  name: string;
  method: string;
  /** '' for a browser check. */
  url: string;
  browser: { url: string; steps: readonly BrowserStep[]; executablePath: string | undefined } | undefined;
  hint: string | undefined;
  headers: Record<string, string>;
  body: unknown;
  expectStatus: number | undefined;
  expect: Record<string, unknown>;
  timeoutMs: number;
}

export interface ResolvedConfig {
  /** The config file it came from (absolute), or '<inline>'. */
  file: string;
  root: string;
  logs: { dir: string; maxSizeBytes: number; keep: number; ringSize: number; fileMode: number };
  control: { host: string; port: number; allowRemote: boolean };
  metrics: { public: boolean };
  /** `.supervisor/` under root. */
  stateDir: string;
  units: Readonly<Record<string, ResolvedUnit>>;
  /** Unit names in a dependency order (every unit after its dependencies). */
  order: readonly string[];
  verify: readonly ResolvedVerifyCheck[];
  reload: boolean;
  /** Every env file the config reads (absolute; the optional top-level `.env` even when missing). */
  envFiles: readonly string[];
}
