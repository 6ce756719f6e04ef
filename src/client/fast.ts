// The client commands without commander: `bksup status` and friends are run many times a day
// (and by scripts in loops), so they start with only what they need — this parser, the client
// and node:http. `parseFast` accepts only what it fully understands: global options (before or
// after the command), the command's own flags in their plain spelling, unit names. Anything
// else — help, `--opt=value`, an unknown option, a missing argument, other commands — returns
// undefined and the full command line (src/cli.ts, commander) handles it, with its usual
// messages. The commands themselves and their options are the same in both places.
//
// Adding a client command: a row in CLIENT_COMMANDS (flags as commander spells them) and the
// same command in src/cli.ts.

import { DEFAULT_TAIL, controlCommand, dashboardCommand, downCommand, logsCommand, statusCommand, type DaemonPlace } from './index.ts';
import { locateDaemon } from './locate.ts';

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
  /** Unit names: none, any number, at least one. */
  units: 'none' | 'any' | 'some';
  /** Flag spelling → key. */
  flags?: Record<string, string>;
  /** Spelling of an option with a value → key. */
  values?: Record<string, string>;
  run(place: DaemonPlace, args: FastArgs): Promise<number>;
}

const io = (): { out: NodeJS.WriteStream; err: NodeJS.WriteStream } => ({ out: process.stdout, err: process.stderr });

export const CLIENT_COMMANDS: Record<string, ClientCommand> = {
  status: { units: 'none', flags: { '--json': 'json' }, run: (place, a) => statusCommand(place, { json: a.flags.has('json') }, io()) },
  logs: {
    units: 'any',
    flags: { '-f': 'follow', '--follow': 'follow', '--json': 'json' },
    values: { '-n': 'lines', '--lines': 'lines' },
    run: (place, a) => {
      // Ctrl-C ends a follow cleanly (exit 0) instead of killing the process mid-line.
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const n = Number.parseInt(a.values.get('lines') ?? String(DEFAULT_TAIL), 10);
      return logsCommand(place, a.units, { follow: a.flags.has('follow'), n, json: a.flags.has('json') }, { ...io(), signal: abort.signal });
    },
  },
  restart: { units: 'some', run: (place, a) => controlCommand(place, 'restart', a.units, io()) },
  stop: { units: 'some', run: (place, a) => controlCommand(place, 'stop', a.units, io()) },
  start: { units: 'some', run: (place, a) => controlCommand(place, 'start', a.units, io()) },
  dashboard: { units: 'none', run: (place) => dashboardCommand(place, io()) },
  down: { units: 'none', run: (place) => downCommand(place, io()) },
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
  const command = name !== undefined && Object.hasOwn(CLIENT_COMMANDS, name) ? CLIENT_COMMANDS[name] : undefined;
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
  const located = await locateDaemon({ dir: args.dir, ...(args.config !== undefined ? { config: args.config } : {}) });
  if (!located.ok) {
    process.stderr.write(`${located.error}\n`);
    process.exitCode = 1;
    return true;
  }
  process.exitCode = await command.run(located.place, args);
  return true;
}
