// Who holds a TCP port: the listening sockets of /proc/net/tcp and tcp6 (state 0A = LISTEN) give
// the socket inode, and /proc/<pid>/fd/* links (`socket:[inode]`) give the process. Used when a
// port a unit needs is taken, typically by a leftover (`uvicorn` from an earlier `dev.sh start`),
// so the message can say which process it is and what to do instead of only "in use".
//
// Only processes whose /proc/<pid>/fd this user may read are found (all of them as root); the
// message says so when the holder is someone else's.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface PortHolder {
  pid: number;
  /** The command line, arguments joined by spaces (cut at 200 characters). */
  command: string;
}

const LISTEN = '0A';
const MAX_COMMAND = 200;

/** Inodes of the sockets listening on `port` (any address, IPv4 and IPv6). */
export function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (f[3] !== LISTEN || local === undefined) continue;
      const hexPort = local.slice(local.lastIndexOf(':') + 1);
      if (parseInt(hexPort, 16) === port && f[9] !== undefined && f[9] !== '0') inodes.add(f[9]);
    }
  }
  return inodes;
}

export function commandLine(pid: number): string {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0').join(' ');
    const text = raw === '' ? readFileSync(`/proc/${pid}/comm`, 'utf8').trim() : raw;
    return text.length > MAX_COMMAND ? `${text.slice(0, MAX_COMMAND)}…` : text;
  } catch {
    return '?';
  }
}

/** The processes listening on `port`; empty when nobody listens or the holder is not visible. */
export function findPortHolders(port: number): PortHolder[] {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return [];
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  const out: PortHolder[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  for (const p of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      if (wanted.has(link)) {
        out.push({ pid: Number(p), command: commandLine(Number(p)) });
        break;
      }
    }
  }
  return out;
}

/**
 * `port 18001 is taken by pid 4242 (uvicorn asgi:application --port 18001)`, plus what to do; or
 * undefined when nothing listens on it (any more).
 */
export function describePortHolders(port: number, holders: readonly PortHolder[] = findPortHolders(port)): string | undefined {
  if (holders.length === 0) {
    if (listeningInodes(port).size === 0) return undefined;
    return `port ${port} is taken by a process this user cannot see (another user's): find it with \`sudo ss -ltnp 'sport = :${port}'\` and stop it, or change the port`;
  }
  const who = holders.map((h) => `pid ${h.pid} (${h.command})`).join(', ');
  const pids = holders.map((h) => h.pid).join(' ');
  return `port ${port} is taken by ${who}: a leftover of an earlier run? Stop it (\`kill ${pids}\`) or change the port`;
}

/** The loopback port an http or tcp probe checks (the port the unit will serve), if any. */
export function loopbackPort(probe: object): number | undefined {
  let target: string | undefined;
  if ('http' in probe && typeof probe.http === 'string') target = probe.http;
  else if ('tcp' in probe) target = typeof probe.tcp === 'number' ? `tcp://127.0.0.1:${probe.tcp}` : `tcp://${String(probe.tcp)}`;
  if (!target) return undefined;
  try {
    const url = new URL(target);
    if (!['127.0.0.1', 'localhost', '[::1]', '0.0.0.0'].includes(url.hostname)) return undefined;
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return Number.isInteger(port) && port > 0 ? port : undefined;
  } catch {
    return undefined;
  }
}
