// The client commands without commander: `bksup status` and friends are run many times a day
// (and by scripts in loops), so they start with only what they need — this parser, the client
// and node:http; `up` likewise goes straight to the daemon's code. `parseFast` accepts only what it fully understands: global options (before or
// after the command), the command's own flags in their plain spelling, unit names. Anything
// else — help, `--opt=value`, an unknown option, a missing argument, other commands — returns
// undefined and the full command line (src/cli.ts, commander) handles it, with its usual
// messages. The commands themselves and their options are the same in both places.
//
// Adding a client command: a row in FAST_COMMANDS (flags as commander spells them) and the
// same command in src/cli.ts.

import type { DaemonPlace } from './index.ts';

// The client's modules (its HTTP client, formatting, node:http) are imported by the client
// commands only: `up` does not load them on its way to the first unit starting (bench/NOTES.md).
const client = (): Promise<typeof import('./index.ts')> => import('./index.ts');

export interface FastArgs {
  /** `-C`, default cwd. */
  dir: string;
  /** `-c`. */
  config?: string;
  units: string[];
  /** Flags seen (by key), and option values. */
  flags: Set<string>;
  values: Map<string, string>;
}

interface ClientCommand {
  /** Whether the command talks to a running daemon (found first with locateDaemon). */
  client: boolean;
  /** Unit names: none, any number, at least one. */
  units: 'none' | 'any' | 'some';
  /** Flag spelling → key. */
  flags?: Record<string, string>;
  /** Spelling of an option with a value → key. */
  values?: Record<string, string>;
  run(place: DaemonPlace, args: FastArgs): Promise<number>;
}

/** `up` in its plain forms (`--rerun` takes several values: the full command line parses it). */
async function up(a: FastArgs): Promise<number> {
  const { runDaemon } = await import('../daemon.ts');
  const code = await runDaemon({
    cwd: a.dir,
    ...(a.config !== undefined ? { configPath: a.config } : {}),
    units: a.units,
    rerun: [],
    out: process.stdout,
    err: process.stderr,
    ...(a.flags.has('no-color') ? { color: false } : {}),
  });
  process.exit(code);
}

const io = (): { out: NodeJS.WriteStream; err: NodeJS.WriteStream } => ({ out: process.stdout, err: process.stderr });

export const FAST_COMMANDS: Record<string, ClientCommand> = {
  up: { client: false, units: 'any', flags: { '--no-color': 'no-color' }, run: (_place, a) => up(a) },
  status: { client: true, units: 'none', flags: { '--json': 'json' }, run: async (place, a) => (await client()).statusCommand(place, { json: a.flags.has('json') }, io()) },
  logs: {
    client: true,
    units: 'any',
    flags: { '-f': 'follow', '--follow': 'follow', '--json': 'json' },
    values: { '-n': 'lines', '--lines': 'lines' },
    run: async (place, a) => {
      const { DEFAULT_TAIL, logsCommand } = await client();
      // Ctrl-C ends a follow cleanly (exit 0) instead of killing the process mid-line.
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const n = Number.parseInt(a.values.get('lines') ?? String(DEFAULT_TAIL), 10);
      return logsCommand(place, a.units, { follow: a.flags.has('follow'), n, json: a.flags.has('json') }, { ...io(), signal: abort.signal });
    },
  },
  restart: { client: true, units: 'some', run: async (place, a) => (await client()).controlCommand(place, 'restart', a.units, io()) },
  stop: { client: true, units: 'some', run: async (place, a) => (await client()).controlCommand(place, 'stop', a.units, io()) },
  start: { client: true, units: 'some', run: async (place, a) => (await client()).controlCommand(place, 'start', a.units, io()) },
  dashboard: { client: true, units: 'none', run: async (place) => (await client()).dashboardCommand(place, io()) },
  down: { client: true, units: 'none', run: async (place) => (await client()).downCommand(place, io()) },
};

const GLOBAL_VALUES: Record<string, 'dir' | 'config'> = { '-C': 'dir', '--dir': 'dir', '-c': 'config', '--config': 'config' };

/** The command and its arguments, or undefined when this is for the full command line. */
export function parseFast(argv: readonly string[], cwd: string): { name: string; command: ClientCommand; args: FastArgs } | undefined {
  const args: FastArgs = { dir: cwd, units: [], flags: new Set(), values: new Map() };
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-'); i += 2) {
    const key = GLOBAL_VALUES[argv[i]!];
    const value = argv[i + 1];
    if (!key || value === undefined || value.startsWith('-')) return undefined;
    args[key] = value;
  }
  const name = argv[i++];
  const command = name !== undefined && Object.hasOwn(FAST_COMMANDS, name) ? FAST_COMMANDS[name] : undefined;
  if (!command || name === undefined) return undefined;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) {
      if (command.units === 'none') return undefined;
      args.units.push(a);
      continue;
    }
    const flag = command.flags?.[a];
    const valueKey = command.values?.[a];
    const globalKey = GLOBAL_VALUES[a];
    const value = argv[i + 1];
    if (flag) args.flags.add(flag);
    else if (valueKey && value !== undefined) args.values.set(valueKey, argv[++i]!);
    // As commander does: the global options may follow the command (`npm run status -- -C dir`).
    else if (globalKey && value !== undefined && !value.startsWith('-')) args[globalKey] = argv[++i]!;
    else return undefined;
  }
  if (command.units === 'some' && args.units.length === 0) return undefined;
  return { name, command, args };
}

/** Runs a client command when `argv` is one; false means: hand it to the full command line. */
export async function runFast(argv: readonly string[]): Promise<boolean> {
  const parsed = parseFast(argv, process.cwd());
  if (!parsed) return false;
  const { args, command } = parsed;
  if (!command.client) {
    process.exitCode = await command.run({ root: args.dir }, args);
    return true;
  }
  // Both at once: the command runs right after the daemon is found.
  const [{ locateDaemon }] = await Promise.all([import('./locate.ts'), client()]);
  const located = await locateDaemon({ dir: args.dir, ...(args.config !== undefined ? { config: args.config } : {}) });
  if (!located.ok) {
    process.stderr.write(`${located.error}\n`);
    process.exitCode = 1;
    return true;
  }
  if (located.place.notice) process.stderr.write(`${located.place.notice}\n`);
  process.exitCode = await command.run(located.place, args);
  return true;
}
