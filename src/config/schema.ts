// Structural validation of a user config with zod. Objects are strict (an unknown key is an
// error with a "did you mean"), and zod keeps going after a problem, so every structural error
// of a config is reported in one run. Checks that need the whole config (unknown dependencies,
// cycles, the control host) live in checks.ts and run even when this part fails.
//
// Units and probes are validated by kind: the unit's `kind` (or the probe key that is present)
// picks one strict schema, so errors talk about the keys that kind actually has.

import { constants as osConstants } from 'node:os';
import { z } from 'zod';
import { isPlainObject } from '../util/plain-object.ts';
import { redactUrl } from '../util/redact.ts';
import { DURATION_HINT, describeType, parseDuration } from './duration.ts';
import { choiceHint, closest, type ConfigIssue, fromZodIssues, strictObject, unknownKeyMessage } from './errors.ts';
import { parseSize } from './size.ts';
import type { UnitKind, UserConfig } from './types.ts';

export const UNIT_KINDS: readonly UnitKind[] = ['process', 'task', 'compose'];
export const CONDITIONS = ['started', 'healthy', 'completed'] as const;
export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;
export const PROBE_TYPES = ['http', 'tcp', 'exec', 'log', 'postgres', 'nats', 'redis', 'docker'] as const;
export type ProbeType = (typeof PROBE_TYPES)[number];

const SIGNALS = Object.keys(osConstants.signals);

export { isPlainObject };

/** A value checked by a function that returns an error message (`problem (hint)`) or undefined. */
function checked(check: (v: unknown) => string | undefined) {
  return z.unknown().superRefine((v, ctx) => {
    const error = check(v);
    if (error !== undefined) ctx.addIssue({ code: 'custom', message: error });
  });
}

/** Runs `schema` on `value` and reports its issues under the current path. */
function forward(schema: z.ZodTypeAny, value: unknown, ctx: z.RefinementCtx, prefix: (string | number)[] = []): void {
  const r = schema.safeParse(value);
  if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: [...prefix, ...issue.path] } as z.IssueData);
}

// ------------------------------------------------------------------ leaves

const requiredString = (what: string, hint: string) =>
  checked((v) => {
    if (v === undefined) return `missing required key "${what}" (${hint})`;
    if (typeof v !== 'string') return `expected a string, got ${describeType(v)} (${hint})`;
    if (v.trim() === '') return `must not be empty (${hint})`;
    return undefined;
  });

const nonEmptyString = (hint?: string) =>
  checked((v) => {
    const h = hint ? ` (${hint})` : '';
    if (typeof v !== 'string') return `expected a string, got ${describeType(v)}${h}`;
    if (v.trim() === '') return `must not be empty${h}`;
    return undefined;
  });

const duration = (opts: { positive?: boolean } = {}) =>
  checked((v) => {
    const r = parseDuration(v);
    if (!r.ok) return r.error;
    if (opts.positive && r.ms === 0) return `must be greater than 0 (${DURATION_HINT})`;
    return undefined;
  });

const size = () =>
  checked((v) => {
    const r = parseSize(v);
    if (!r.ok) return r.error;
    if (r.bytes === 0) return `must be greater than 0 (use e.g. '10MB')`;
    return undefined;
  });

const int = (min: number, max: number, hint?: string) =>
  checked((v) => {
    const h = hint ? ` (${hint})` : '';
    if (typeof v !== 'number' || !Number.isFinite(v)) return `expected a number, got ${describeType(v)}${h}`;
    if (!Number.isInteger(v)) return `expected a whole number, got ${v}${h}`;
    if (v < min) return `must be >= ${min}, got ${v}${h}`;
    if (v > max) return `must be <= ${max}, got ${v}${h}`;
    return undefined;
  });

const num = (min: number, max: number, hint?: string) =>
  checked((v) => {
    const h = hint ? ` (${hint})` : '';
    if (typeof v !== 'number' || !Number.isFinite(v)) return `expected a number, got ${describeType(v)}${h}`;
    if (v < min) return `must be >= ${min}, got ${v}${h}`;
    if (v > max) return `must be <= ${max}, got ${v}${h}`;
    return undefined;
  });

const oneOf = (values: readonly string[], noun = 'valid') =>
  checked((v) => {
    if (typeof v !== 'string') return `expected one of ${values.join(', ')}, got ${describeType(v)}`;
    if (!values.includes(v)) return `invalid value ${JSON.stringify(v)} (${choiceHint(v, values, noun)})`;
    return undefined;
  });

function stringArrayIssue(v: unknown, what: string, example: string): string | undefined {
  if (!Array.isArray(v)) {
    const wrap = typeof v === 'string' ? ` (write [${JSON.stringify(v)}])` : ` (expected an array of ${what}, e.g. ${example})`;
    return `expected an array of ${what}, got ${describeType(v)}${wrap}`;
  }
  const bad = v.findIndex((x) => typeof x !== 'string' || x === '');
  if (bad >= 0) return `[${bad}]: expected a non-empty string, got ${describeType(v[bad])}`;
  return undefined;
}

const stringArray = (what: string, example: string) => checked((v) => stringArrayIssue(v, what, example));

const boolean = () => checked((v) => (typeof v === 'boolean' ? undefined : `expected true or false, got ${describeType(v)}`));

const command = (required: boolean, hint: string) =>
  checked((v) => {
    if (v === undefined) return required ? `missing required key "command" (${hint})` : undefined;
    if (typeof v === 'string') return v.trim() === '' ? `must not be empty (${hint})` : undefined;
    if (Array.isArray(v)) {
      if (v.length === 0) return `must not be empty (${hint})`;
      if (v.some((x) => typeof x !== 'string') || v[0] === '') return `an argv array holds only strings, the first non-empty (${hint})`;
      return undefined;
    }
    return `expected a string or an array of strings, got ${describeType(v)} (${hint})`;
  });

const COMMAND_HINT = "a string run by /bin/sh -c, or an argv array like ['uv', 'run', 'app.py']";

export function checkUrl(v: unknown, schemes: readonly string[], example: string): string | undefined {
  if (typeof v !== 'string') return `expected a URL string, got ${describeType(v)} (use e.g. '${example}')`;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `invalid URL ${JSON.stringify(redactUrl(v))} (use e.g. '${example}')`;
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!schemes.includes(scheme)) {
    return `unsupported URL scheme "${scheme}:" in ${JSON.stringify(redactUrl(v))} (use ${schemes.map((s) => `${s}://`).join(' or ')}, e.g. '${example}')`;
  }
  if (url.hostname === '') return `URL ${JSON.stringify(redactUrl(v))} has no host (use e.g. '${example}')`;
  return undefined;
}

const url = (schemes: readonly string[], example: string) => checked((v) => checkUrl(v, schemes, example));

const HTTP_URL = url(['http', 'https'], 'http://127.0.0.1:18001/health');

function checkHostPort(v: unknown): string | undefined {
  const hint = "use 'host:port' or a port number on 127.0.0.1, e.g. '127.0.0.1:15432' or 15432";
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 && v <= 65535 ? undefined : `port ${v} out of range 1-65535 (${hint})`;
  if (typeof v !== 'string') return `expected 'host:port' or a port number, got ${describeType(v)} (${hint})`;
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(v) ?? /^()(\d+)$/.exec(v);
  if (!m) return `invalid address ${JSON.stringify(v)} (${hint})`;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return `port ${port} out of range 1-65535 (${hint})`;
  return undefined;
}

function checkRegex(v: unknown): string | undefined {
  if (typeof v !== 'string') return `expected a regular expression string, got ${describeType(v)}`;
  try {
    new RegExp(v);
    return undefined;
  } catch (err) {
    const why = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    return `invalid regular expression ${JSON.stringify(v)}: ${why} (inside a JS string a backslash is written twice: '\\\\d+')`;
  }
}

function checkSignal(v: unknown): string | undefined {
  const hint = 'use a signal name such as SIGTERM, SIGINT, SIGQUIT, SIGKILL';
  if (typeof v !== 'string') return `expected a signal name, got ${describeType(v)} (${hint})`;
  if (SIGNALS.includes(v)) return undefined;
  const guess = closest(v, SIGNALS) ?? closest(`SIG${v.toUpperCase()}`, SIGNALS);
  return `invalid signal ${JSON.stringify(v)} (${guess ? `did you mean "${guess}"? ` : ''}${hint})`;
}

const envValues = () =>
  z.unknown().superRefine((v, ctx) => {
    if (!isPlainObject(v)) {
      ctx.addIssue({ code: 'custom', message: `expected an object of variables, got ${describeType(v)} (e.g. { NODE_ENV: 'development' })` });
      return;
    }
    for (const [key, value] of Object.entries(v)) {
      if (key === '' || key.includes('=') || key.includes('\0')) {
        ctx.addIssue({ code: 'custom', path: [key], message: `invalid variable name ${JSON.stringify(key)} (no '=' and not empty)` });
      }
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `expected a string, number or boolean, got ${describeType(value)} (env values are strings; use JSON.stringify(...) for structured data)`,
        });
      }
    }
  });

// ------------------------------------------------------------------ probes

const TIMING_SHAPE = {
  interval: duration({ positive: true }).optional(),
  timeout: duration({ positive: true }).optional(),
  retries: int(1, 1_000_000, 'failures in a row that make the unit unhealthy').optional(),
  startPeriod: duration().optional(),
};

const natsRequest = strictObject({
  subject: requiredString('subject', "the NATS subject, e.g. 'bk_lite.get_login_module_domain_list'"),
  payload: z.unknown().optional(),
  expect: z.unknown().superRefine((v, ctx) => {
    if (typeof v === 'string') {
      const err = checkRegex(v);
      if (err) ctx.addIssue({ code: 'custom', message: err });
    }
  }).optional(),
});

function probeShapes(kind: UnitKind | undefined): Record<ProbeType, z.ZodRawShape> {
  return {
    http: {
      http: HTTP_URL,
      method: oneOf(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).optional(),
      expectStatus: checked((v) => {
        const list = Array.isArray(v) ? v : [v];
        const bad = list.find((s) => typeof s !== 'number' || !Number.isInteger(s) || s < 100 || s > 599);
        return bad === undefined && list.length > 0 ? undefined : `expected an HTTP status 100-599 or a list of them, got ${describeType(bad ?? v)}`;
      }).optional(),
      headers: z.record(z.string({ invalid_type_error: 'header values must be strings' })).optional(),
    },
    tcp: { tcp: checked(checkHostPort) },
    exec: { exec: command(true, COMMAND_HINT), cwd: nonEmptyString().optional() },
    log: { log: checked(checkRegex) },
    postgres: {
      postgres: url(['postgres', 'postgresql'], 'postgres://postgres:***@127.0.0.1:15432/bklite'),
      query: nonEmptyString().optional(),
    },
    nats: {
      nats: url(['nats', 'tls', 'ws', 'wss'], 'nats://127.0.0.1:14222'),
      jetstream: boolean().optional(),
      request: natsRequest.optional(),
      user: z.string().optional(),
      pass: z.string().optional(),
      token: z.string().optional(),
    },
    redis: { redis: url(['redis', 'rediss'], 'redis://127.0.0.1:16380'), password: z.string().optional() },
    docker: {
      docker: checked((v) => {
        if (v === true) {
          return kind === 'compose' || kind === undefined ? undefined : `docker: true means "this compose unit's container" and needs a compose unit (name a container instead)`;
        }
        if (typeof v === 'string' && v.trim() !== '') return undefined;
        return `expected a container name or true, got ${describeType(v)}`;
      }),
    },
  };
}

/**
 * A healthcheck (timing keys) or a `once.skipIf` probe (only `timeout`): exactly one probe key
 * picks the strict schema that applies.
 */
function probe(kind: UnitKind | undefined, extra: z.ZodRawShape, what: string) {
  const shapes = probeShapes(kind);
  const list = PROBE_TYPES.join(', ');
  return z.unknown().superRefine((v, ctx) => {
    if (!isPlainObject(v)) {
      ctx.addIssue({ code: 'custom', message: `expected an object with one probe type, got ${describeType(v)} (e.g. { http: 'http://127.0.0.1:8000/health' })` });
      return;
    }
    const found = PROBE_TYPES.filter((t) => Object.hasOwn(v, t));
    const type = found[0];
    if (type !== undefined && found.length === 1) {
      forward(strictObject({ ...shapes[type], ...extra }), v, ctx);
      return;
    }
    if (type === undefined) {
      ctx.addIssue({ code: 'custom', message: `${what} has no probe type (add one of: ${list})` });
    } else {
      const names = `${found.slice(0, -1).join(', ')} and ${found[found.length - 1] as string}`;
      ctx.addIssue({ code: 'custom', message: `one probe type per ${what} object: found ${names} (keep one)` });
    }
    // Still check the timing keys and point out typos, so this is not the only error shown.
    const known = [...PROBE_TYPES, ...Object.keys(extra)];
    for (const key of Object.keys(v)) {
      if (!known.includes(key)) ctx.addIssue({ code: 'custom', path: [key], message: unknownKeyMessage(key, known) });
    }
    const timing = Object.fromEntries(Object.entries(v).filter(([k]) => Object.hasOwn(extra, k)));
    forward(strictObject(extra), timing, ctx);
  });
}

// ------------------------------------------------------------------ units

const dependsOn = () =>
  z.unknown().superRefine((v, ctx) => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        if (typeof item !== 'string') ctx.addIssue({ code: 'custom', path: [i], message: `expected a unit name, got ${describeType(item)}` });
      });
      return;
    }
    if (!isPlainObject(v)) {
      ctx.addIssue({ code: 'custom', message: `expected { unit: condition } or an array of unit names, got ${describeType(v)} (e.g. { postgres: 'healthy' })` });
      return;
    }
    for (const [name, cond] of Object.entries(v)) {
      if (typeof cond !== 'string' || !(CONDITIONS as readonly string[]).includes(cond)) {
        const got = typeof cond === 'string' ? JSON.stringify(cond) : describeType(cond);
        const hint = typeof cond === 'string' ? choiceHint(cond, CONDITIONS) : `valid: ${CONDITIONS.join(', ')}`;
        ctx.addIssue({ code: 'custom', path: [name], message: `invalid dependency condition ${got} (${hint})` });
      }
    }
  });

const restart = strictObject({
  policy: oneOf(RESTART_POLICIES).optional(),
  // 0 is allowed: restart at once (the crash-loop budget still bounds a unit that never lives).
  backoff: strictObject({
    initial: duration().optional(),
    max: duration().optional(),
    factor: num(1, 100, 'each delay is the previous one times factor').optional(),
    jitter: num(0, 1, 'a fraction of the delay, e.g. 0.1').optional(),
  }).optional(),
  maxRestarts: int(0, 1_000_000, 'restarts allowed inside window before the unit is failed').optional(),
  window: duration({ positive: true }).optional(),
});

const stop = strictObject({
  signal: checked(checkSignal).optional(),
  timeout: duration().optional(),
});

const envMap = (example: string) => z.record(z.string({ invalid_type_error: `values must be strings (e.g. ${example})` }), { invalid_type_error: `expected { KEY: 'value' }, e.g. ${example}` });

const requiredFile = strictObject({
  file: nonEmptyString(),
  hint: z.string().optional(),
  create: envMap("{ DB_PORT: '15432' }").optional(),
  template: nonEmptyString('a dotenv file relative to root, e.g. server/envs/.env.example').optional(),
  expect: envMap("{ NATS_SERVERS: 'nats://127.0.0.1:14222' }").optional(),
});

const watch = strictObject({
  paths: checked((v) => {
    if (v === undefined) return "missing required key \"paths\" (globs relative to root, e.g. paths: ['server/**/*.py'])";
    const bad = stringArrayIssue(v, 'glob strings', "['server/**/*.py']");
    if (bad) return bad;
    if ((v as unknown[]).length === 0) return "must not be empty (e.g. paths: ['server/**/*.py'])";
    return undefined;
  }),
  ignore: stringArray('glob strings', "['server/**/tests/**']").optional(),
  debounce: duration().optional(),
  cascade: boolean().optional(),
});

function commonShape(kind: UnitKind) {
  return {
    enabled: boolean().optional(),
    description: z.string().optional(),
    env: envValues().optional(),
    envFile: nonEmptyString().optional(),
    dependsOn: dependsOn().optional(),
    healthcheck: probe(kind, TIMING_SHAPE, 'healthcheck').optional(),
    restart: restart.optional(),
    stop: stop.optional(),
    onDependencyFailure: oneOf(['restart', 'wait', 'ignore'], 'onDependencyFailure').optional(),
    requires: z.array(requiredFile).optional(),
    watch: watch.optional(),
  };
}

const processUnit = strictObject({
  kind: z.literal('process').optional(),
  ...commonShape('process'),
  command: command(true, `a process unit needs a command: ${COMMAND_HINT}`),
  cwd: nonEmptyString().optional(),
  tty: boolean().optional(),
});

const once = z.unknown().superRefine((v, ctx) => {
  if (typeof v === 'boolean') return;
  if (!isPlainObject(v)) {
    ctx.addIssue({ code: 'custom', message: `expected true or { inputs, skipIf }, got ${describeType(v)}` });
    return;
  }
  forward(
    strictObject({
      inputs: stringArray('glob strings', "['server/**/migrations/*.py']").optional(),
      skipIf: probe('task', { timeout: duration({ positive: true }).optional() }, 'skipIf').optional(),
      outputs: stringArray('paths relative to root', "['server/.venv']").optional(),
    }),
    v,
    ctx,
  );
});

const taskUnit = strictObject({
  kind: z.literal('task'),
  ...commonShape('task'),
  command: command(false, COMMAND_HINT).optional(),
  cwd: nonEmptyString().optional(),
  postgres: strictObject({
    url: url(['postgres', 'postgresql'], 'postgres://postgres:***@127.0.0.1:15432/postgres'),
    ensureDatabases: stringArray('database names', "['mlflow']").optional(),
  }).optional(),
  once: once.optional(),
  optional: boolean().optional(),
});

const composeUnit = strictObject({
  kind: z.literal('compose'),
  ...commonShape('compose'),
  service: requiredString('service', 'the service name in the compose file, e.g. service: \'postgres\''),
  file: nonEmptyString().optional(),
  project: checked(checkProjectName).optional(),
});

function checkProjectName(v: unknown): string | undefined {
  if (typeof v !== 'string') return `expected a string, got ${describeType(v)}`;
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(v)) return `invalid compose project name ${JSON.stringify(v)} (lowercase letters, digits, '_' and '-', starting with a letter or digit)`;
  return undefined;
}

const UNIT_SCHEMAS: Record<UnitKind, z.ZodTypeAny> = { process: processUnit, task: taskUnit, compose: composeUnit };

/** The unit's kind, `process` when unset; undefined when `kind` is not a known kind. */
export function kindOf(unit: unknown): UnitKind | undefined {
  if (!isPlainObject(unit)) return undefined;
  const kind = unit.kind ?? 'process';
  return (UNIT_KINDS as readonly unknown[]).includes(kind) ? (kind as UnitKind) : undefined;
}

const unit = z.unknown().superRefine((v, ctx) => {
  if (!isPlainObject(v)) {
    ctx.addIssue({ code: 'custom', message: `expected a unit object, got ${describeType(v)} (e.g. { command: 'npm run dev' })` });
    return;
  }
  const kind = kindOf(v);
  if (kind === undefined) {
    const got = typeof v.kind === 'string' ? JSON.stringify(v.kind) : describeType(v.kind);
    const dockerHint = v.kind === 'docker' ? '; a Docker container is a compose unit with a service' : '';
    const guess = typeof v.kind === 'string' ? closest(v.kind, UNIT_KINDS) : undefined;
    ctx.addIssue({
      code: 'custom',
      path: ['kind'],
      message: `unknown kind ${got} (${guess ? `did you mean "${guess}"? ` : ''}valid kinds: ${UNIT_KINDS.join(', ')}${dockerHint})`,
    });
    return;
  }
  if (kind === 'task') {
    const hasCommand = v.command !== undefined;
    const hasPostgres = v.postgres !== undefined;
    if (!hasCommand && !hasPostgres) {
      ctx.addIssue({ code: 'custom', message: 'task has nothing to run (set command, or postgres: { url, ensureDatabases })' });
    } else if (hasCommand && hasPostgres) {
      ctx.addIssue({ code: 'custom', message: 'a task runs either command or postgres, not both (split it into two tasks and make one depend on the other)' });
    }
  }
  forward(UNIT_SCHEMAS[kind], v, ctx);
});

const units = z.unknown().superRefine((v, ctx) => {
  if (v === undefined) {
    ctx.addIssue({ code: 'custom', message: "missing required key \"units\" (e.g. units: { web: { command: 'pnpm dev', cwd: 'web' } })" });
    return;
  }
  if (!isPlainObject(v)) {
    ctx.addIssue({ code: 'custom', message: `expected an object of units, got ${describeType(v)} (e.g. units: { web: { command: 'pnpm dev' } })` });
    return;
  }
  if (Object.keys(v).length === 0) {
    ctx.addIssue({ code: 'custom', message: "no units defined (e.g. units: { web: { command: 'pnpm dev', cwd: 'web' } })" });
  }
  for (const [name, u] of Object.entries(v)) forward(unit, u, ctx, [name]);
});

// ------------------------------------------------------------------ top level

const browserStep = z.unknown().superRefine((v, ctx) => {
  const shapes = {
    waitForText: strictObject({ waitForText: nonEmptyString() }),
    fill: strictObject({ fill: nonEmptyString('a selector'), value: z.string() }),
    click: strictObject({ click: nonEmptyString('a selector') }),
    waitForUrlNot: strictObject({ waitForUrlNot: checked(checkRegex) }),
  };
  const key = isPlainObject(v) ? Object.keys(shapes).find((k) => k in v) : undefined;
  if (!key) {
    ctx.addIssue({ code: 'custom', message: `expected a step: { waitForText }, { fill, value }, { click } or { waitForUrlNot }, got ${describeType(v)}` });
    return;
  }
  forward(shapes[key as keyof typeof shapes], v, ctx);
});

const httpUrl = checked((v) => checkUrl(v, ['http', 'https'], 'http://127.0.0.1:18001/api/v1/core/api/get_domain_list/'));

const verifyCheck = strictObject({
  name: requiredString('name', "a short label, e.g. name: 'login works'"),
  method: checked((v) => (typeof v === 'string' && /^[A-Za-z]+$/.test(v) ? undefined : `expected an HTTP method like 'GET' or 'POST', got ${describeType(v)}`)).optional(),
  url: httpUrl.optional(),
  browser: strictObject({
    url: httpUrl,
    steps: z.array(browserStep, { invalid_type_error: "expected an array of steps, e.g. [{ waitForText: 'domain.com' }]" }).optional(),
    executablePath: nonEmptyString('e.g. /usr/bin/chromium').optional(),
  }).optional(),
  hint: z.string().optional(),
  headers: z.record(z.string({ invalid_type_error: 'header values must be strings' })).optional(),
  body: z.unknown().optional(),
  expectStatus: int(100, 599, 'an HTTP status code').optional(),
  expect: z.record(z.unknown(), { invalid_type_error: "expected { 'dotted.path': value }" }).optional(),
  timeout: duration({ positive: true }).optional(),
});

export const userConfigSchema = strictObject({
  root: nonEmptyString().optional(),
  env: envValues().optional(),
  envFile: nonEmptyString().optional(),
  logs: strictObject({
    dir: nonEmptyString().optional(),
    maxSize: size().optional(),
    keep: int(0, 1000, 'rotated files kept per unit').optional(),
    ringSize: int(1, 10_000_000, 'lines kept in memory per unit').optional(),
    fileMode: checked((v) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0o777) return `expected a file mode such as 0o600 or 0o640, got ${typeof v === 'number' ? String(v) : describeType(v)}`;
      if ((v & 0o600) !== 0o600) return `must let the owner read and write (0o600 at least), got 0o${v.toString(8)}`;
      if ((v & 0o111) !== 0) return `log files are not programs: no execute bits, got 0o${v.toString(8)} (use e.g. 0o640)`;
      if ((v & 0o022) !== 0) return `only the daemon may write its logs: no group or other write bits, got 0o${v.toString(8)} (use e.g. 0o640)`;
      return undefined;
    }).optional(),
  }).optional(),
  control: strictObject({
    host: nonEmptyString("e.g. '127.0.0.1'").optional(),
    port: int(0, 65535, '0 picks a free port').optional(),
    allowRemote: boolean().optional(),
  }).optional(),
  metrics: strictObject({
    public: boolean().optional(),
  }).optional(),
  compose: strictObject({
    file: nonEmptyString().optional(),
    project: checked(checkProjectName).optional(),
  }).optional(),
  units,
  reload: boolean().optional(),
  verify: z
    .array(
      z.unknown().superRefine((v, ctx) => {
        forward(verifyCheck, v, ctx);
        if (isPlainObject(v) && (v.url === undefined) === (v.browser === undefined)) {
          ctx.addIssue({
            code: 'custom',
            ...(v.url === undefined ? { path: ['url'] } : {}),
            message: v.url === undefined
              ? `missing required key "url" (the URL to request, e.g. 'http://127.0.0.1:18001/api/v1/core/api/get_domain_list/'), or browser: { url, steps }`
              : 'a check has either url (HTTP) or browser (headless Chromium), not both',
          });
        }
      }),
      { invalid_type_error: 'expected an array of checks, e.g. [{ name, url, expect }]' },
    )
    .optional(),
});

/** Structural problems of a raw config (empty when its shape is right). */
export function structuralIssues(raw: unknown): ConfigIssue[] {
  if (!isPlainObject(raw)) {
    return [{ path: [], message: `the config is ${describeType(raw)}, expected an object (export default defineConfig({ units: { ... } }))` }];
  }
  const r = userConfigSchema.safeParse(raw);
  return r.success ? [] : fromZodIssues(r.error.issues);
}

/** Narrowing for callers that have checked `structuralIssues(raw)` is empty. */
export function asUserConfig(raw: unknown): UserConfig {
  return raw as UserConfig;
}
