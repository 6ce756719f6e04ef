// UnitTerminal (src/units/terminal.ts) on real pseudo-terminals (spawnPty): what a client gets
// when it attaches late (the end of the output, from a whole line on), one keyboard at a time, a
// stale session that cannot act any more, and a terminal that outlives its runs.

import { afterEach, expect, it } from 'vitest';
import { spawnPty, type PtyChild } from '../src/units/pty.ts';
import { UnitTerminal } from '../src/units/terminal.ts';
import { waitFor } from './helpers/wait.ts';

const started: PtyChild[] = [];

/** A run as ProcessUnit starts it: on a terminal of the unit terminal's current size. */
function run(script: string, term: UnitTerminal): PtyChild {
  const res = spawnPty({ command: ['/bin/sh', '-c', script], cwd: process.cwd(), env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, term.size);
  if (!res.ok) throw new Error(res.reason);
  started.push(res.child);
  return res.child;
}

function client(): { text: () => string; output: (d: Buffer) => void } {
  let text = '';
  return { text: () => text, output: (d) => (text += d.toString('utf8')) };
}

afterEach(async () => {
  for (const c of started.splice(0)) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await c.exited;
  }
});

it('a late client gets the end of the output from a whole line on, then its keys reach the program', async () => {
  const notes: string[] = [];
  const term = new UnitTerminal('web', (t) => notes.push(t));
  // ~20 KiB of numbered lines, then a prompt without a newline.
  const pty = run('i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; printf "name? "; read x; echo "hello $x"; sleep 100', term);
  term.bind(pty);
  let seen = '';
  pty.output.on('data', (d: Buffer) => (seen += d.toString()));
  await waitFor(() => seen.includes('name? '), { message: 'the prompt' });

  const c = client();
  const res = term.attach(c, { cols: 100, rows: 30 });
  if (!res.ok) throw new Error(res.error);
  const replay = c.text();
  expect(replay.endsWith('line 1999\r\nname? ')).toBe(true);
  expect(Buffer.byteLength(replay)).toBeLessThanOrEqual(8 * 1024);
  expect(replay).toMatch(/^line \d+\r\n/); // starts with a whole line, not the middle of one
  expect(term.attached).toBe(true);
  expect(notes).toEqual(['terminal attached (100x30); keystrokes now come from bksup attach']);

  // One keyboard at a time.
  const other = term.attach(client(), undefined);
  expect(other.ok).toBe(false);
  if (!other.ok) expect(other.error).toMatch(/^web already has a terminal attached \(since \d\d:\d\d:\d\d\)/);

  res.session.input(Buffer.from('ada\r'));
  await waitFor(() => c.text().includes('hello ada'), { message: 'the answer on the client' });
  res.session.detach();
  expect(term.attached).toBe(false);
  expect(notes.at(-1)).toBe('terminal detached; the unit keeps running');
});

it('a detached session cannot type or resize any more, and the terminal goes on with the next run', async () => {
  const term = new UnitTerminal('api');
  const first = run('read x; echo "first got $x"; stty size; sleep 100', term);
  term.bind(first);
  const a = client();
  const ra = term.attach(a, { cols: 90, rows: 20 });
  if (!ra.ok) throw new Error(ra.error);
  ra.session.detach();

  const b = client();
  const rb = term.attach(b, undefined);
  if (!rb.ok) throw new Error(rb.error);
  ra.session.input(Buffer.from('from-a\r')); // stale: dropped
  ra.session.resize({ cols: 10, rows: 5 });
  expect(term.size).toEqual({ cols: 90, rows: 20 });
  rb.session.input(Buffer.from('from-b\r'));
  await waitFor(() => b.text().includes('first got from-b'), { message: "b's keys" });
  await waitFor(() => b.text().includes('20 90'), { message: "the first attach's size" });
  expect(b.text()).not.toContain('from-a');

  // The run ends; the next one starts with the client's size and talks to the same client.
  process.kill(-first.pid, 'SIGKILL');
  await first.exited;
  rb.session.resize({ cols: 132, rows: 43 });
  const second = run('stty size; read x; echo "second got $x"; sleep 100', term);
  term.bind(second);
  await waitFor(() => b.text().includes('43 132'), { message: "the new run's output, at the client's size" });
  rb.session.input(Buffer.from('again\r'));
  await waitFor(() => b.text().includes('second got again'), { message: 'keys to the new run' });
});
