// tcp: ready when something accepts a connection on host:port. The socket is destroyed on every path.

import { connect, type Socket } from 'node:net';
import type { TcpProbe } from '../config/types.ts';
import { attempt } from './abort.ts';
import { describeNetError } from './errors.ts';
import type { Probe, ProbeContext } from './types.ts';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * `5432` / `'5432'` → 127.0.0.1:5432; `'db:5432'`, `'[::1]:5432'`, `'tcp://db:5432'`.
 * Returns an error sentence for anything else.
 */
export function parseHostPort(target: string | number): HostPort | string {
  const text = String(target).trim().replace(/^tcp:\/\//i, '');
  let host = '127.0.0.1';
  let portText = text;
  if (!/^\d+$/.test(text)) {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]\s]+):(\d+)$/.exec(text);
    if (!m) return `"${String(target)}" is not host:port or a port number (e.g. 127.0.0.1:5432 or 5432)`;
    host = m[1] ?? host;
    portText = m[2] ?? '';
  }
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `port ${portText} of "${String(target)}" is outside 1-65535`;
  return { host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A connection to a local port nobody listens on can get that very port as its source: the
 * kernel then connects the socket to itself (TCP simultaneous open). Nothing is served there, and
 * while the probe holds the port the unit's own listen fails with EADDRINUSE. With ports from the
 * ephemeral range (the bench's, `port: 0` servers') and a probe every few ms while a unit starts,
 * this happened in ~1 round in 10 of the bench's 8-unit graph.
 */
export function isSelfConnection(socket: Socket): boolean {
  return socket.localPort !== undefined && socket.localPort === socket.remotePort && socket.localAddress === socket.remoteAddress;
}

export function createTcpProbe(spec: TcpProbe, ctx: ProbeContext): Probe {
  const target = parseHostPort(spec.tcp);
  if (typeof target === 'string') throw new Error(`unit "${ctx.unit}": healthcheck tcp ${target}`);
  const label = `tcp ${formatHostPort(target)}`;
  return {
    label,
    check: (signal) =>
      attempt(signal, label, (finish, addCleanup) => {
        const socket = connect({ host: target.host, port: target.port });
        addCleanup(() => socket.destroy());
        socket.once('connect', () => {
          if (!isSelfConnection(socket)) return finish({ ok: true, detail: 'connected' });
          socket.destroy();
          finish({ ok: false, reason: `${label}: connection refused (nothing listening; the connection reached itself)` });
        });
        socket.once('error', (err) => finish({ ok: false, reason: `${label}: ${describeNetError(err)}` }));
        // A peer that accepts and closes at once still proves the port is served; 'connect' came first.
        socket.once('close', () => finish({ ok: false, reason: `${label}: connection closed before it was established` }));
      }),
  };
}
