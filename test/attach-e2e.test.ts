// `tty: true` and `bksup attach`, end to end: a real daemon (`bksup up`), units on real PTYs, and
// the CLI's `attach` running in a terminal of its own (a PTY made here, as a terminal emulator
// would), typed into key by key. What users rely on: typing into pdb at a breakpoint() works,
// Ctrl-] detaches and the unit runs on (same pid), a second attach is refused with the reason,
// the output is logged like any unit's, and stopping a tty unit ends its whole tree.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findDaemon } from '../src/client/daemon.ts';
import type { UnitSnapshot } from '../src/units/types.ts';
import { loadNodePty } from '../src/units/pty.ts';
import { isAlive } from '../src/util/proc.ts';
import { identify, stillAlive } from './helpers/pids.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'bksup.js');
const CTRL_RIGHT_BRACKET = '\x1d';

interface Pty {
  pid: number;
  resize(cols: number, rows: number): void;
  onData(fn: (d: string) => void): unknown;
  onExit(fn: (e: { exitCode: number }) => void): unknown;
  write(d: string): void;
  kill(sig?: string): void;
}
const nodePty = createRequire(import.meta.url)('node-pty') as { spawn(file: string, args: string[], o: object): Pty };

let dir: string;
let daemon: ChildProcess | undefined;
let daemonOut = '';

/** `bksup attach <unit>` in a terminal of its own: what it printed so far, and its exit code. */
function attachInTerminal(unit: string): { screen: () => string; type: (keys: string) => void; exited: Promise<number>; pty: Pty } {
  const pty = nodePty.spawn(process.execPath, [BIN, '-C', dir, 'attach', unit], { name: 'xterm', cols: 100, rows: 30, cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
  let screen = '';
  pty.onData((d) => (screen += d));
  const exited = new Promise<number>((resolve) => pty.onExit((e) => resolve(e.exitCode)));
  return { screen: () => screen, type: (keys) => pty.write(keys), exited, pty };
}

async function units(): Promise<UnitSnapshot[]> {
  const found = await findDaemon(dir);
  if (!found.ok) throw new Error(found.error);
  const res = await fetch(`${found.daemon.baseUrl}/api/units`, { headers: { authorization: `Bearer ${found.daemon.info.token}` } });
  return (await res.json()) as UnitSnapshot[];
}
async function unit(name: string): Promise<UnitSnapshot> {
  const u = (await units()).find((x) => x.name === name);
  if (!u) throw new Error(`no unit ${name}`);
  return u;
}
const logOf = (name: string): string => readFileSync(join(dir, 'logs', `${name}.log`), 'utf8');

beforeAll(async () => {
  // Not a skip: a checkout where node-pty did not build must fail here, saying why.
  const lib = loadNodePty();
  if (!lib.ok) throw new Error(lib.reason);
  dir = await mkdtemp(join(tmpdir(), 'bksup-attach-'));
  const py = `import sys\nx = 1\nprint("before the breakpoint", flush=True)\nbreakpoint()\nprint("after the breakpoint, x =", x, flush=True)\n`;
  await writeFile(join(dir, 'bp.py'), py);
  await writeFile(
    join(dir, 'supervisor.config.ts'),
    `export default {
  units: {
    pdb: { command: ['python3', 'bp.py'], tty: true, restart: { policy: 'on-failure' } },
    shell: { command: 'sleep 1000 & echo "shell ready on $(tty)"; while read -r line; do if [ "$line" = size ]; then echo "size: $(stty size)"; else echo "you typed: $line"; fi; done', tty: true, stop: { timeout: '5s' } },
    plain: { command: 'sleep 1000' },
  },
};
`,
  );
  daemon = spawn(process.execPath, [BIN, '-C', dir, 'up', '--no-color'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout!.on('data', (d: Buffer) => (daemonOut += d.toString()));
  daemon.stderr!.on('data', (d: Buffer) => (daemonOut += d.toString()));
  try {
    await waitFor(async () => (await findDaemon(dir)).ok, { timeout: 30_000, message: 'the daemon to write control.json' });
    // pdb's prompt `(Pdb) ` ends no line: the line above it says pdb stopped at the breakpoint.
    await waitFor(() => logOf('pdb').includes('-> print(') && logOf('shell').includes('shell ready'), { timeout: 30_000, message: 'pdb at its prompt and the shell ready' });
  } catch (err) {
    throw new Error(`${(err as Error).message}; daemon output:\n${daemonOut}`);
  }
}, 60_000);

afterAll(async () => {
  const pid = daemon?.pid;
  if (pid !== undefined && daemon?.exitCode === null && isAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => daemon?.exitCode !== null || daemon?.signalCode !== null, { timeout: 30_000, message: 'daemon exit' });
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}, 40_000);

it('types into pdb at a breakpoint(), detaches with Ctrl-] leaving it running, and a second attach is refused', async () => {
  const before = await unit('pdb');
  expect(before.state).toBe('healthy');
  expect(before.tty).toEqual({ attached: false });

  const term = attachInTerminal('pdb');
  // The prompt was printed before the attach: the kept output shows it.
  await waitFor(() => term.screen().includes('attached to pdb') && term.screen().includes('(Pdb)'), { message: `the pdb prompt on the attached terminal; screen: ${JSON.stringify(term.screen())}` });
  expect((await unit('pdb')).tty).toEqual({ attached: true });

  // One keyboard at a time: a second terminal is told why and given its prompt back.
  const second = attachInTerminal('pdb');
  expect(await second.exited).toBe(1);
  expect(second.screen()).toContain('pdb already has a terminal attached');

  term.type('p 6 * 7\r');
  await waitFor(() => term.screen().includes('42'), { message: `pdb's answer on the terminal; screen: ${JSON.stringify(term.screen())}` });
  // Typed input was line-edited by the unit's own terminal and the answer logged as any output.
  await waitFor(() => /^.*\b42\b/m.test(logOf('pdb')), { message: 'the answer in logs/pdb.log' });

  // Raw mode: Ctrl-] acts at once, without Enter.
  term.type(CTRL_RIGHT_BRACKET);
  expect(await term.exited).toBe(0);
  expect(term.screen()).toContain('detached from pdb');
  // The daemon notices the close a moment after the client has exited.
  const after = await waitFor(async () => {
    const u = await unit('pdb');
    return u.tty?.attached === false ? u : undefined;
  }, { message: 'the daemon to see the detach' });
  expect(after).toMatchObject({ state: 'healthy', pid: before.pid });
  expect(isAlive(before.pid!)).toBe(true);

  // Back again: pdb is still waiting; change x and continue, and the program goes on.
  const again = attachInTerminal('pdb');
  await waitFor(() => again.screen().includes('attached to pdb'), { message: 'the second attachment' });
  again.type('x = 5\r');
  again.type('c\r');
  await waitFor(() => again.screen().includes('after the breakpoint, x = 5'), { message: `the program going on; screen: ${JSON.stringify(again.screen())}` });
  // It exited 0 (policy on-failure: stopped); the attachment says so and stays until detached.
  await waitFor(() => again.screen().includes('[bksup] pdb: stopped'), { message: `the state line; screen: ${JSON.stringify(again.screen())}` });
  again.type(CTRL_RIGHT_BRACKET);
  expect(await again.exited).toBe(0);
  // The unit's own log has its output and says when a terminal came and went (written in batches).
  await waitFor(() => logOf('pdb').includes('after the breakpoint, x = 5') && logOf('pdb').split('terminal detached').length === 3, { message: 'the log of both attachments' });
  expect(logOf('pdb').split('terminal attached').length).toBe(3);
}, 60_000);

it('a non-tty unit or an unknown one is refused with the fix; a dashboard session never gets a keyboard', async () => {
  const plain = attachInTerminal('plain');
  expect(await plain.exited).toBe(1);
  expect(plain.screen()).toContain('set tty: true');
  const unknown = attachInTerminal('nope');
  expect(await unknown.exited).toBe(1);
  expect(unknown.screen()).toMatch(/unknown unit "nope" \(known: .*shell/);

  // Not from a terminal (a pipe, a script): said at once, nothing attached.
  const piped = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = spawn(process.execPath, [BIN, '-C', dir, 'attach', 'shell'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    c.once('exit', (code) => resolve({ code, err }));
  });
  expect(piped.code).toBe(1);
  expect(piped.err).toContain('stdin is not a terminal: run bksup attach shell in a terminal');

  // A browser session, even on the dashboard's own name and origin, is refused before the handshake.
  const found = await findDaemon(dir);
  if (!found.ok) throw new Error(found.error);
  const { baseUrl, info } = found.daemon;
  const mint = await fetch(`${baseUrl}/api/login-tokens`, { method: 'POST', headers: { authorization: `Bearer ${info.token}` } });
  const { token, url } = (await mint.json()) as { token: string; url: string };
  // The dashboard answers under its own `bksup-<random>.localhost` name: sent as Host to 127.0.0.1.
  const dash = new URL(url);
  const login = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: info.port, method: 'POST', path: '/login', headers: { host: dash.host, origin: dash.origin, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, cookie: String(res.headers['set-cookie'] ?? '').split(';')[0]! });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ token }));
  });
  expect(login.status).toBe(204);
  const cookie = login.cookie;
  const { WebSocket } = await import('ws');
  const refused = await new Promise<string>((resolve) => {
    const ws = new WebSocket(`${found.daemon.wsUrl}/api/attach?unit=shell`, { headers: { cookie, origin: dash.origin, host: dash.host } });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    ws.on('open', () => {
      ws.close();
      resolve('101 attached');
    });
    ws.on('error', (err) => resolve(`error ${err.message}`));
  });
  expect(refused).toMatch(/^403 .*attaching needs the control token/);
}, 30_000);

it('the window size follows the attached terminal; the attachment follows a restart of the unit, and stopping a tty unit ends its whole tree', async () => {
  const first = await unit('shell');
  const tree = identify([first.pid!, ...childrenOf(first.pid!)]);
  expect(tree.length).toBeGreaterThanOrEqual(2); // the shell and its background sleep
  // Marked as the unit's like a piped child, so the sweeps find what it detaches.
  expect(readFileSync(`/proc/${first.pid}/environ`, 'utf8').split('\0')).toContainEqual(expect.stringMatching(/^BKSUP_UNIT=[0-9a-f]+:shell:\d+$/));
  const term = attachInTerminal('shell');
  await waitFor(() => term.screen().includes('attached to shell'), { message: 'attached' });
  term.type('hello\r');
  await waitFor(() => term.screen().includes('you typed: hello'), { message: `the echo; screen: ${JSON.stringify(term.screen())}` });
  // The unit's terminal has the attached terminal's size, and follows it.
  term.type('size\r');
  await waitFor(() => term.screen().includes('size: 30 100'), { message: `the attached window size; screen: ${JSON.stringify(term.screen())}` });
  // The new size travels SIGWINCH → bksup attach → daemon → the unit's terminal: ask until it arrived.
  term.pty.resize(132, 43);
  const answers = (): number => term.screen().split('size: ').length - 1;
  await waitFor(async () => {
    const asked = answers();
    term.type('size\r');
    await waitFor(() => answers() > asked, { message: 'an answer to size' });
    return term.screen().includes('size: 43 132');
  }, { message: `the new window size; screen: ${JSON.stringify(term.screen())}` });
  const readyLines = (): number => term.screen().split('shell ready').length;
  const readyBefore = readyLines();

  const found = await findDaemon(dir);
  if (!found.ok) throw new Error(found.error);
  const post = (path: string): Promise<Response> => fetch(`${found.daemon.baseUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${found.daemon.info.token}` } });
  expect((await post('/api/units/shell/restart')).status).toBe(200);
  await waitFor(async () => {
    const u = await unit('shell');
    return u.state === 'healthy' && u.pid !== first.pid;
  }, { message: 'shell restarted' });
  // The old run's whole tree went (the background sleep too), the new run talks to the same attachment.
  await waitFor(() => stillAlive(tree).length === 0, { message: 'the first run tree gone' });
  await waitFor(() => readyLines() > readyBefore, { message: `the new run's output on the attached terminal; screen: ${JSON.stringify(term.screen())}` });
  term.type('again\r');
  await waitFor(() => term.screen().includes('you typed: again'), { message: 'typing into the new run' });

  const second = await unit('shell');
  const secondTree = identify([second.pid!, ...childrenOf(second.pid!)]);
  expect((await post('/api/units/shell/stop')).status).toBe(200);
  await waitFor(async () => (await unit('shell')).state === 'stopped', { message: 'shell stopped' });
  expect(stillAlive(secondTree)).toEqual([]);
  term.type(CTRL_RIGHT_BRACKET);
  expect(await term.exited).toBe(0);
}, 60_000);

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
