// `bksup`: the command line. `up` runs the daemon in the foreground; every other command is a
// client of a running daemon (found through .supervisor/control.json under the config's root,
// src/client/locate.ts) or a config check. src/main.ts runs the common client commands without
// this module; the daemon's code (and the config loader's) is imported only by the commands that
// need it, so that a client command stays fast whichever way it arrives here.

import { Command, Option } from 'commander';
import { controlCommand, dashboardCommand, downCommand, locateDaemon, logsCommand, statusCommand, type DaemonPlace } from './client/index.ts';

const program = new Command();
program
  .name('bksup')
  .description('Process supervisor for the BK-Lite development stack')
  .option('-c, --config <file>', 'config file (default: supervisor.config.ts here, or $SUPERVISOR_CONFIG)')
  .option('-C, --dir <dir>', 'project directory', process.cwd())
  .showHelpAfterError();

const globals = (): { dir: string; config?: string } => program.opts<{ dir: string; config?: string }>();
const io = { out: process.stdout, err: process.stderr };

/** Where the daemon of this config keeps its state, or undefined after saying why not (exit 1). */
async function located(): Promise<DaemonPlace | undefined> {
  const g = globals();
  const found = await locateDaemon({ dir: g.dir, ...(g.config ? { config: g.config } : {}) });
  if (found.ok) {
    if (found.place.notice) process.stderr.write(`${found.place.notice}\n`);
    return found.place;
  }
  process.stderr.write(`${found.error}\n`);
  process.exitCode = 1;
  return undefined;
}

program
  .command('up')
  .description('start the stack in the foreground; Ctrl-C stops everything, dependents first')
  .argument('[units...]', 'only these units (and what they depend on)')
  .option('--rerun <task...>', 'run these `once` tasks even if their fingerprint is unchanged', [])
  .option('--no-color', 'no ANSI colours')
  .action(async (units: string[], o: { rerun: string[]; color: boolean }) => {
    const g = globals();
    const { runDaemon } = await import('./daemon.ts');
    const code = await runDaemon({
      cwd: g.dir,
      ...(g.config ? { configPath: g.config } : {}),
      units,
      rerun: o.rerun,
      out: process.stdout,
      err: process.stderr,
      ...(o.color === false ? { color: false } : {}),
    });
    process.exit(code);
  });

program
  .command('status')
  .description('one line per unit: state, pid, uptime, restarts, health or reason')
  .option('--json', 'the same rows as GET /api/units')
  .action(async (o: { json?: boolean }) => {
    const place = await located();
    if (place) process.exitCode = await statusCommand(place, { json: Boolean(o.json) }, io);
  });

program
  .command('logs')
  .description('print unit logs from the running daemon')
  .argument('[units...]', 'only these units')
  .option('-f, --follow', 'keep following new lines (reconnects if the daemon restarts)')
  .addOption(new Option('-n, --lines <n>', 'lines of history per unit').default('100').argParser((v) => Number.parseInt(v, 10)))
  .option('--json', 'one JSON object per line')
  .action(async (units: string[], o: { follow?: boolean; lines: number | string; json?: boolean }) => {
    const place = await located();
    if (!place) return;
    // Ctrl-C ends a follow cleanly (exit 0) instead of killing the process mid-line.
    const abort = new AbortController();
    process.once('SIGINT', () => abort.abort());
    process.exitCode = await logsCommand(place, units, { follow: Boolean(o.follow), n: Number(o.lines), json: Boolean(o.json) }, { ...io, signal: abort.signal });
  });

for (const action of ['restart', 'stop', 'start'] as const) {
  program
    .command(action)
    .description(`${action} units of the running daemon`)
    .argument('<units...>')
    .action(async (units: string[]) => {
      const place = await located();
      if (place) process.exitCode = await controlCommand(place, action, units, io);
    });
}

program
  .command('attach')
  .description('connect this terminal to a unit with tty: true (pdb at a breakpoint()); Ctrl-] detaches, the unit keeps running')
  .argument('<unit>')
  .action(async (unit: string) => {
    const place = await located();
    if (!place) return;
    const { attachCommand } = await import('./client/attach.ts');
    const abort = new AbortController();
    for (const sig of ['SIGHUP', 'SIGTERM'] as const) process.once(sig, () => abort.abort());
    process.exitCode = await attachCommand(place, unit, { stdin: process.stdin, out: process.stdout, err: process.stderr, signal: abort.signal });
  });

program
  .command('dashboard')
  .description('print a one-time login link to the browser dashboard of the running daemon')
  .action(async () => {
    const place = await located();
    if (place) process.exitCode = await dashboardCommand(place, { out: process.stdout, err: process.stderr });
  });

program
  .command('down')
  .description('stop the running daemon and everything it supervises')
  .action(async () => {
    const place = await located();
    if (place) process.exitCode = await downCommand(place, io);
  });

program
  .command('check')
  .description('validate the config, print the dependency graph, run the preflight checks')
  .option('--no-preflight', 'only validate the config and print the graph')
  .action(async (o: { preflight: boolean }) => {
    const g = globals();
    const { checkCommand } = await import('./check.ts');
    process.exitCode = await checkCommand({ cwd: g.dir, ...(g.config ? { configPath: g.config } : {}), preflight: o.preflight }, process.stdout, process.stderr);
  });

program
  .command('verify')
  .description("run the config's smoke checks against the running stack")
  .argument('[checks...]', 'only the checks with these names')
  .action(async (checks: string[]) => {
    const g = globals();
    const { verifyCommand } = await import('./verify.ts');
    process.exitCode = await verifyCommand({ cwd: g.dir, ...(g.config ? { configPath: g.config } : {}), only: checks }, process.stdout, process.stderr);
  });

program
  .command('reload')
  .description('load the config again and apply the difference to the running daemon')
  .action(async () => {
    const { reloadCommand } = await import('./client/reload.ts');
    process.exitCode = await reloadCommand(globals().dir, io);
  });

await program.parseAsync(process.argv);
