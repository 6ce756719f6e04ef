// Every kind of config mistake gives one clear line naming the file and key, and all of a
// config's mistakes come out in one run.
import { describe, expect, test } from 'vitest';
import { resolveConfig } from '../src/config/validate.ts';

const FILE = '/project/supervisor.config.ts';

function errorsOf(user: unknown): string[] {
  const r = resolveConfig(user, { file: FILE, cwd: '/project', env: {} });
  if (r.ok) throw new Error('expected the config to be rejected');
  return r.errors;
}

/** A config with the given units plus a harmless base the dependency tests can point at. */
function withUnits(units: Record<string, unknown>): unknown {
  return {
    units: {
      nats: { kind: 'compose', service: 'nats' },
      postgres: { kind: 'compose', service: 'postgres' },
      redis: { kind: 'compose', service: 'redis' },
      ...units,
    },
  };
}

const cases: [string, unknown, string][] = [
  [
    'unknown dependency',
    withUnits({ server: { command: 'x', dependsOn: { natz: 'healthy' } } }),
    'supervisor.config.ts: units.server.dependsOn.natz: unknown unit "natz" (known: nats, postgres, redis)',
  ],
  [
    'unknown dependency in the array form names the unit',
    withUnits({ server: { command: 'x', dependsOn: ['nats', 'natz'] } }),
    'supervisor.config.ts: units.server.dependsOn.natz: unknown unit "natz" (known: nats, postgres, redis)',
  ],
  [
    'bad duration',
    { units: { web: { command: 'x', restart: { backoff: { initial: '10 sec' } } } } },
    `supervisor.config.ts: units.web.restart.backoff.initial: invalid duration "10 sec" (use e.g. '100ms', '10s', '5m' or a number of milliseconds)`,
  ],
  ['unknown unit key', { units: { server: { comand: 'x' } } }, 'supervisor.config.ts: units.server.comand: unknown key "comand" (did you mean "command"?)'],
  ['unknown top-level key', { units: { a: { command: 'x' } }, unit: {} }, 'supervisor.config.ts: unit: unknown key "unit" (did you mean "units"?)'],
  ['unknown key without a near miss lists the known keys', { units: { a: { command: 'x', zzz: 1 } } }, 'units.a.zzz: unknown key "zzz" (known keys here: kind, enabled, description, env, envFile, dependsOn, healthcheck, restart, stop, onDependencyFailure, requires, watch, command, cwd, tty)'],
  ['missing command', { units: { server: { cwd: 'server' } } }, 'supervisor.config.ts: units.server.command: missing required key "command" (a process unit needs a command'],
  ['empty command', { units: { server: { command: '  ' } } }, 'units.server.command: must not be empty'],
  ['wrong kind', { units: { db: { kind: 'docker', service: 'db' } } }, 'units.db.kind: unknown kind "docker" (valid kinds: process, task, compose; a Docker container is a compose unit with a service)'],
  ['kind typo', { units: { db: { kind: 'compse', service: 'db' } } }, 'units.db.kind: unknown kind "compse" (did you mean "compose"?'],
  ['compose without service', { units: { db: { kind: 'compose' } } }, 'units.db.service: missing required key "service"'],
  ['task with nothing to run', { units: { t: { kind: 'task' } } }, 'units.t: task has nothing to run (set command, or postgres: { url, ensureDatabases })'],
  ['task with both command and postgres', { units: { t: { kind: 'task', command: 'x', postgres: { url: 'postgres://h/db' } } } }, 'units.t: a task runs either command or postgres, not both'],
  ['process unit with task keys', { units: { p: { command: 'x', once: true } } }, 'units.p.once: unknown key "once"'],
  ['healthcheck with two probe types', { units: { w: { command: 'x', healthcheck: { http: 'http://127.0.0.1/', tcp: 80 } } } }, 'units.w.healthcheck: one probe type per healthcheck object: found http and tcp (keep one)'],
  ['healthcheck with no probe type', { units: { w: { command: 'x', healthcheck: { interval: '1s' } } } }, 'units.w.healthcheck: healthcheck has no probe type (add one of: http, tcp, exec, log, postgres, nats, redis, docker)'],
  ['probe key typo', { units: { w: { command: 'x', healthcheck: { htpp: 'http://127.0.0.1/' } } } }, 'units.w.healthcheck.htpp: unknown key "htpp" (did you mean "http"?)'],
  ['bad dependency condition', withUnits({ s: { command: 'x', dependsOn: { nats: 'heathy' } } }), 'units.s.dependsOn.nats: invalid dependency condition "heathy" (did you mean "healthy"? valid: started, healthy, completed)'],
  ['completed on a long-running unit', withUnits({ s: { command: 'x', dependsOn: { nats: 'completed' } } }), 'units.s.dependsOn.nats: condition "completed" needs a task, but "nats" is a compose unit'],
  ['healthy on a task', { units: { t: { kind: 'task', command: 'x' }, s: { command: 'x', dependsOn: { t: 'healthy' } } } }, 'units.s.dependsOn.t: condition "healthy" on task "t"'],
  ['dependsOn of the wrong type', { units: { s: { command: 'x', dependsOn: 'nats' } } }, 'units.s.dependsOn: expected { unit: condition } or an array of unit names, got string "nats"'],
  ['unit name with a slash', { units: { 'a/b': { command: 'x' } } }, `units["a/b"]: invalid unit name "a/b" (use letters, digits, '_', '.' and '-', starting with a letter or digit; no '/' or '..'`],
  ['unit name with ..', { units: { 'a..b': { command: 'x' } } }, 'units["a..b"]: invalid unit name "a..b"'],
  ['unit name starting with a dot', { units: { '.hidden': { command: 'x' } } }, 'invalid unit name ".hidden"'],
  ['reserved unit name', { units: { supervisor: { command: 'x' } } }, 'units.supervisor: unit name "supervisor" is reserved'],
  ['self dependency', { units: { a: { command: 'x', dependsOn: ['a'] } } }, 'units.a.dependsOn.a: unit "a" depends on itself (remove this dependency)'],
  ['cycle of two', { units: { a: { command: 'x', dependsOn: ['b'] }, b: { command: 'x', dependsOn: ['a'] } } }, 'supervisor.config.ts: units: dependency cycle a -> b -> a'],
  [
    'cycle of three',
    { units: { a: { command: 'x', dependsOn: { b: 'started' } }, b: { command: 'x', dependsOn: { c: 'started' } }, c: { command: 'x', dependsOn: { a: 'started' } } } },
    'units: dependency cycle a -> b -> c -> a',
  ],
  ['invalid regex in a log probe', { units: { w: { command: 'x', healthcheck: { log: 'ready (on' } } } }, 'units.w.healthcheck.log: invalid regular expression "ready (on": Unterminated group'],
  ['bad URL in an http probe', { units: { w: { command: 'x', healthcheck: { http: 'localhost:3011/x' } } } }, `units.w.healthcheck.http: unsupported URL scheme "localhost:"`],
  ['unparsable URL in an http probe', { units: { w: { command: 'x', healthcheck: { http: 'http://' } } } }, `units.w.healthcheck.http: invalid URL "http://" (use e.g. 'http://127.0.0.1:18001/health')`],
  ['invalid signal', { units: { w: { command: 'x', stop: { signal: 'SIGTREM' } } } }, 'units.w.stop.signal: invalid signal "SIGTREM" (did you mean "SIGTERM"?'],
  ['signal without SIG', { units: { w: { command: 'x', stop: { signal: 'TERM' } } } }, 'units.w.stop.signal: invalid signal "TERM" (did you mean "SIGTERM"?'],
  ['negative retries', { units: { w: { command: 'x', healthcheck: { tcp: 80, retries: -1 } } } }, 'units.w.healthcheck.retries: must be >= 1, got -1'],
  ['fractional maxRestarts', { units: { w: { command: 'x', restart: { maxRestarts: 1.5 } } } }, 'units.w.restart.maxRestarts: expected a whole number, got 1.5'],
  ['negative duration', { units: { w: { command: 'x', stop: { timeout: -5 } } } }, 'units.w.stop.timeout: invalid duration -5: must not be negative'],
  ['zero interval', { units: { w: { command: 'x', healthcheck: { tcp: 80, interval: 0 } } } }, 'units.w.healthcheck.interval: must be greater than 0'],
  ['jitter above 1', { units: { w: { command: 'x', restart: { backoff: { jitter: 2 } } } } }, 'units.w.restart.backoff.jitter: must be <= 1, got 2'],
  ['backoff initial above max', { units: { w: { command: 'x', restart: { backoff: { initial: '1m', max: '10s' } } } } }, 'units.w.restart.backoff: initial (1m) is longer than max (10s)'],
  ['restart policy typo', { units: { w: { command: 'x', restart: { policy: 'alwyas' } } } }, 'units.w.restart.policy: invalid value "alwyas" (did you mean "always"? valid: always, on-failure, never)'],
  ['bad size', { logs: { maxSize: '10 megs' }, units: { a: { command: 'x' } } }, `logs.maxSize: invalid size "10 megs" (use e.g. '512KB', '10MB', '1GB' or a number of bytes)`],
  ['world-writable log files', { logs: { fileMode: 0o666 }, units: { a: { command: 'x' } } }, 'logs.fileMode: only the daemon may write its logs: no group or other write bits, got 0o666 (use e.g. 0o640)'],
  ['log files the owner cannot write', { logs: { fileMode: 0o400 }, units: { a: { command: 'x' } } }, 'logs.fileMode: must let the owner read and write (0o600 at least), got 0o400'],
  ['port out of range', { control: { port: 70000 }, units: { a: { command: 'x' } } }, 'control.port: must be <= 65535, got 70000'],
  ['tcp port out of range', { units: { w: { command: 'x', healthcheck: { tcp: '127.0.0.1:99999' } } } }, 'units.w.healthcheck.tcp: port 99999 out of range 1-65535'],
  [
    'non-loopback control host',
    { control: { host: '0.0.0.0' }, units: { a: { command: 'x' } } },
    'supervisor.config.ts: control.host: "0.0.0.0" is not a loopback address (set control.allowRemote: true to expose the control API)',
  ],
  ['once.inputs not an array', { units: { t: { kind: 'task', command: 'x', once: { inputs: 'src/**' } } } }, 'units.t.once.inputs: expected an array of glob strings, got string "src/**" (write ["src/**"])'],
  ['once of the wrong type', { units: { t: { kind: 'task', command: 'x', once: 'yes' } } }, 'units.t.once: expected true or { inputs, skipIf }'],
  ['skipIf with two probes', { units: { t: { kind: 'task', command: 'x', once: { skipIf: { tcp: 1, http: 'http://h/' } } } } }, 'units.t.once.skipIf: one probe type per skipIf object: found http and tcp'],
  ['env value object', { units: { a: { command: 'x', env: { OPTS: { a: 1 } } } } }, 'units.a.env.OPTS: expected a string, number or boolean, got an object (env values are strings; use JSON.stringify(...) for structured data)'],
  ['top-level env value null', { env: { X: null }, units: { a: { command: 'x' } } }, 'env.X: expected a string, number or boolean, got null'],
  ['verify without url', { units: { a: { command: 'x' } }, verify: [{ name: 'login' }] }, 'verify[0].url: missing required key "url"'],
  ['verify with duplicate names', { units: { a: { command: 'x' } }, verify: [{ name: 'x', url: 'http://h/' }, { name: 'x', url: 'http://h/' }] }, 'verify[1].name: duplicate check name "x"'],
  ['docker: true on a process unit', { units: { a: { command: 'x', healthcheck: { docker: true } } } }, 'units.a.healthcheck.docker: docker: true means'],
  ['no units', { units: {} }, 'supervisor.config.ts: units: no units defined'],
  ['missing units', {}, 'supervisor.config.ts: units: missing required key "units"'],
  ['unit not an object', { units: { a: 'npm start' } }, `units.a: expected a unit object, got string "npm start" (e.g. { command: 'npm run dev' })`],
  ['compose project name', { compose: { project: 'BK Lite' }, units: { a: { command: 'x' } } }, 'compose.project: invalid compose project name "BK Lite"'],
];

describe('each kind of mistake', () => {
  test.each(cases)('%s', (_name, user, expected) => {
    const errors = errorsOf(user);
    expect(errors.join('\n')).toContain(expected);
    for (const e of errors) expect(e.startsWith('supervisor.config.ts: ')).toBe(true);
  });
});

describe('reporting', () => {
  test('all errors of one config come out at once', () => {
    const errors = errorsOf({
      unitz: {},
      control: { host: '10.0.0.1', port: -1 },
      units: {
        server: { comand: 'x', dependsOn: { natz: 'healthy' } },
        web: { command: 'x', restart: { policy: 'sometimes', backoff: { initial: '10 sec' } }, healthcheck: { http: 'http://h/', tcp: 1 } },
        db: { kind: 'docker' },
        t: { kind: 'task' },
        a: { command: 'x', dependsOn: ['b'] },
        b: { command: 'x', dependsOn: ['a'] },
      },
      verify: [{ name: 'v' }],
    });
    const expected = [
      'unitz: unknown key "unitz"',
      'control.host: "10.0.0.1" is not a loopback address',
      'control.port: must be >= 0',
      'units.server.comand: unknown key',
      'units.server.command: missing required key',
      'units.server.dependsOn.natz: unknown unit "natz"',
      'units.web.restart.policy: invalid value "sometimes"',
      'units.web.restart.backoff.initial: invalid duration "10 sec"',
      'units.web.healthcheck: one probe type per healthcheck object: found http and tcp',
      'units.db.kind: unknown kind "docker"',
      'units.t: task has nothing to run',
      'units: dependency cycle a -> b -> a',
      'verify[0].url: missing required key "url"',
    ];
    for (const e of expected) expect(errors.some((line) => line.includes(e)), `missing: ${e}\nin:\n${errors.join('\n')}`).toBe(true);
    expect(errors).toHaveLength(expected.length);
  });

  test('two independent cycles are both reported', () => {
    const errors = errorsOf({
      units: {
        a: { command: 'x', dependsOn: ['b'] },
        b: { command: 'x', dependsOn: ['a'] },
        c: { command: 'x', dependsOn: ['d'] },
        d: { command: 'x', dependsOn: ['c'] },
      },
    });
    expect(errors).toEqual([
      'supervisor.config.ts: units: dependency cycle a -> b -> a (remove one of these dependencies)',
      'supervisor.config.ts: units: dependency cycle c -> d -> c (remove one of these dependencies)',
    ]);
  });

  test('several unknown keys in one object each get a line', () => {
    const errors = errorsOf({ units: { a: { command: 'x', comand: 'y', dependOn: [] } } });
    expect(errors).toEqual([
      'supervisor.config.ts: units.a.comand: unknown key "comand" (did you mean "command"?)',
      'supervisor.config.ts: units.a.dependOn: unknown key "dependOn" (did you mean "dependsOn"?)',
    ]);
  });

  test('passwords in URLs are not echoed', () => {
    const errors = errorsOf({
      units: {
        p: { command: 'x', healthcheck: { postgres: 'postgres://admin:hunter2secret@:5432/db' } },
        q: { command: 'x', healthcheck: { redis: 'http://user:hunter2secret@127.0.0.1:6379' } },
      },
    });
    expect(errors).toHaveLength(2);
    expect(errors.join('\n')).not.toContain('hunter2secret');
    expect(errors.join('\n')).toContain('postgres://admin:***@:5432/db');
  });

  test('the file is named relative to cwd, or absolute outside it', () => {
    const inside = resolveConfig({ units: {} }, { file: '/project/conf/sup.config.ts', cwd: '/project', env: {} });
    expect(inside.ok ? [] : inside.errors).toEqual(['conf/sup.config.ts: units: no units defined (e.g. units: { web: { command: \'pnpm dev\', cwd: \'web\' } })']);
    const outside = resolveConfig({ units: {} }, { file: '/elsewhere/supervisor.config.ts', cwd: '/project', env: {} });
    expect(outside.ok ? [] : outside.errors[0]).toMatch(/^\/elsewhere\/supervisor\.config\.ts: units: /);
  });

  test('a config that is not an object', () => {
    expect(errorsOf(null)).toEqual([
      'supervisor.config.ts: the config is null, expected an object (export default defineConfig({ units: { ... } }))',
    ]);
  });
});
