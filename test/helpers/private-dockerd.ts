// A dockerd of the test's own (own socket, data root, exec root and containerd), so that a test
// may stop and start Docker under a running stack without disturbing the machine's dockerd or
// other test files using it. Root only (as CI runs). Point the test process at it with
// `process.env.DOCKER_HOST = d.host` before anything runs `docker`.
//
// stop() is what happens to Docker on a laptop when Docker Desktop restarts: dockerd shuts its
// containers down and goes away; start() brings it back over the same data (images, containers
// and volumes kept).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../../src/util/proc.ts';
import { waitFor } from './wait.ts';
import { dockerReachable } from '../../src/compose/detect.ts';

export interface PrivateDockerd {
  /** unix:///…/docker.sock */
  host: string;
  dir: string;
  readonly pid: number | undefined;
  start(): Promise<void>;
  /** SIGTERM, then waits until dockerd (and so its containerd) is gone. */
  stop(): Promise<void>;
  /** stop() and removes the data (its overlay mounts are gone with dockerd). */
  dispose(): Promise<void>;
}

export function privateDockerd(): PrivateDockerd {
  const dir = mkdtempSync('/tmp/bksup-dockerd-');
  const host = `unix://${join(dir, 'docker.sock')}`;
  let child: ChildProcess | undefined;
  let out = '';
  const running = (): boolean => child?.pid !== undefined && child.exitCode === null && child.signalCode === null;
  const self: PrivateDockerd = {
    host,
    dir,
    get pid() {
      return running() ? child?.pid : undefined;
    },
    async start() {
      if (running()) return;
      out = '';
      child = spawn(
        'dockerd',
        ['--host', host, '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'), '--bridge=none', '--iptables=false'],
        { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
      );
      const keep = (b: Buffer): void => {
        out = (out + b.toString()).slice(-8192);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      await waitFor(
        async () => {
          if (!running()) throw new Error(`dockerd exited:\n${out}`);
          return (await dockerReachable({ env: { ...process.env, DOCKER_HOST: host } as Record<string, string> })).ok;
        },
        { timeout: 60_000, interval: 200, message: `private dockerd at ${host}` },
      );
    },
    async stop() {
      const c = child;
      if (!c?.pid || !running()) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
      await waitFor(() => !isAlive(c.pid!), { timeout: 30_000, message: 'dockerd gone' });
    },
    async dispose() {
      await self.stop();
      // dockerd leaves its default network namespace bind-mounted under the exec root.
      for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n').reverse()) {
        const target = line.split(' ')[1];
        if (target?.startsWith(`${dir}/`)) execFileSync('umount', ['-l', target]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return self;
}
