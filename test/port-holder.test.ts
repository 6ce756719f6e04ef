// A port a unit needs, taken by a leftover (a real listener: python3 -m http.server, standing
// in for the `uvicorn` of an earlier `dev.sh start`): the holder is found through /proc/net/tcp
// and /proc/*/fd, and both preflight (`bksup check`, `bksup up`) and the unit's reason name the
// port, the holder's pid and command line, and what to do.

import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { describePortHolders, findPortHolders, listeningInodes } from '../src/util/port-holder.ts';
import { runCli, startCli, units, waitForControl, writeConfig } from './helpers/daemon.ts';
import { freePort } from './helpers/ports.ts';
import { removeDir, tempDir } from './helpers/stack.ts';
import { waitFor } from './helpers/wait.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function leftover(): Promise<{ port: number; child: ChildProcess; command: string }> {
  const port = await freePort();
  const args = ['-m', 'http.server', String(port), '--bind', '127.0.0.1'];
  const child = spawn('python3', args, { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  await waitFor(() => listeningInodes(port).size > 0, { timeout: 20_000, message: `python3 listening on ${port}` });
  return { port, child, command: `python3 ${args.join(' ')}` };
}

describe('who holds a port', () => {
  it('finds the pid and command line of a real listener, and nothing on a free port', async () => {
    const { port, child, command } = await leftover();
    const holders = findPortHolders(port);
    expect(holders).toHaveLength(1);
    expect(holders[0]!.pid).toBe(child.pid);
    expect(holders[0]!.command).toMatch(new RegExp(`python3?[\\d.]* ${command.split(' ').slice(1).join(' ').replace(/\./g, '\\.')}$`));
    expect(describePortHolders(port)).toMatch(new RegExp(`^port ${port} is taken by pid ${child.pid} \\(.*http\\.server ${port}.*\\): a leftover of an earlier run\\? Stop it \\(\`kill ${child.pid}\`\\) or change the port$`));
    const free = await freePort();
    expect(findPortHolders(free)).toEqual([]);
    expect(describePortHolders(free)).toBeUndefined();
  });

  it('bksup check and bksup up name the holder; the unit that could not listen says who holds its port', async () => {
    const { port, child } = await leftover();
    const dir = tempDir();
    cleanups.push(() => removeDir(dir));
    writeConfig(
      dir,
      `{ units: { server: { command: ${JSON.stringify(`exec python3 -m http.server ${port} --bind 127.0.0.1`)},
                            healthcheck: { http: 'http://127.0.0.1:${port}/', interval: '200ms' }, restart: { policy: 'never' } } } }`,
    );
    const expected = new RegExp(`port ${port} is taken by pid ${child.pid} \\([^)]*http\\.server ${port}[^)]*\\): a leftover of an earlier run\\? Stop it \\(\`kill ${child.pid}\`\\)`);
    const check = await runCli(dir, ['check']);
    expect(check.output).toMatch(new RegExp(`server: ${expected.source}`));

    const up = startCli(dir, ['up']);
    cleanups.push(() => up.child.kill('SIGKILL'));
    await waitForControl(dir);
    const failed = await waitFor(async () => (await units(dir)).find((u) => u.name === 'server' && u.state === 'failed'), { timeout: 30_000, message: 'server failed' });
    expect(failed.reason).toMatch(/^exited with code 1; /);
    expect(failed.reason).toMatch(expected);
    expect(up.output()).toMatch(new RegExp(`preflight: server: ${expected.source}`));
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
  }, 60_000);
});
