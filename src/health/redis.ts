// redis: ready when the server answers PING with +PONG, after AUTH when a password is known.
// Speaks just enough RESP over a plain socket (AUTH and PING pipelined, two status replies)
// so the supervisor needs no Redis client. Auth problems get their own clear sentence.

import { connect } from 'node:net';
import type { RedisProbe } from '../config/types.ts';
import { redactUrl } from '../util/redact.ts';
import { attempt, failure } from './abort.ts';
import { describeNetError } from './errors.ts';
import { formatHostPort, parseHostPort, type HostPort } from './tcp.ts';
import type { Probe, ProbeContext } from './types.ts';

/** A reply line longer than this is not a status reply; stop buffering. */
const MAX_REPLY_BYTES = 4096;

interface RedisTarget extends HostPort {
  user: string | undefined;
  password: string | undefined;
}

/** `redis://[:pw@|user:pw@]host[:port][/db]`, `host:port` or a port number. */
export function parseRedisTarget(spec: RedisProbe): RedisTarget | string {
  const raw = spec.redis.trim();
  let target: RedisTarget;
  if (/^rediss:\/\//i.test(raw)) return 'rediss:// (TLS) is not supported by the redis probe; use a tcp probe or redis://';
  if (/^redis:\/\//i.test(raw)) {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      return `"${redactUrl(raw)}" is not a URL (e.g. redis://:PASSWORD@127.0.0.1:16380)`;
    }
    const port = u.port ? Number(u.port) : 6379;
    target = {
      host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
      port,
      user: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
    };
  } else {
    const hp = parseHostPort(raw);
    if (typeof hp === 'string') return `${hp}; or write redis://:PASSWORD@host:port`;
    target = { ...hp, user: undefined, password: undefined };
  }
  if (spec.password !== undefined) target.password = spec.password;
  return target;
}

export function createRedisProbe(spec: RedisProbe, ctx: ProbeContext): Probe {
  const target = parseRedisTarget(spec);
  if (typeof target === 'string') throw new Error(`unit "${ctx.unit}": healthcheck redis ${target}`);
  const label = `redis ${formatHostPort(target)}${target.password !== undefined ? ' (auth)' : ''}`;
  const commands: string[][] = [];
  if (target.password !== undefined) commands.push(target.user ? ['AUTH', target.user, target.password] : ['AUTH', target.password]);
  commands.push(['PING']);
  const request = commands.map(encodeCommand).join('');

  return {
    label,
    check: (signal) =>
      attempt(signal, label, (finish, addCleanup) => {
        const socket = connect({ host: target.host, port: target.port });
        addCleanup(() => socket.destroy());
        let buffer = '';
        const replies: string[] = [];
        socket.setEncoding('utf8');
        socket.once('connect', () => socket.write(request));
        socket.on('data', (chunk: string) => {
          buffer += chunk;
          let nl: number;
          while ((nl = buffer.indexOf('\r\n')) >= 0) {
            replies.push(buffer.slice(0, nl));
            buffer = buffer.slice(nl + 2);
          }
          if (buffer.length > MAX_REPLY_BYTES) return finish(failure(label, 'unexpected reply (not a Redis server?)'));
          const verdict = judge(replies, commands.length, target.password !== undefined);
          if (verdict) finish(verdict.ok ? verdict : failure(label, verdict.reason));
        });
        socket.once('error', (err) => finish(failure(label, describeNetError(err))));
        socket.once('close', () => {
          const verdict = judge(replies, commands.length, target.password !== undefined);
          if (verdict && !verdict.ok) return finish(failure(label, verdict.reason));
          finish(failure(label, replies.length ? `connection closed after "${replies[0]}"` : 'connection closed before a reply (not a Redis server, or protected mode?)'));
        });
      }),
  };
}

function encodeCommand(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * Decides from the reply lines so far; undefined = need more. Replies arrive in command order:
 * [AUTH reply,] PING reply. Redis answers each pipelined command even after a failed AUTH.
 */
function judge(replies: string[], expected: number, sentAuth: boolean): { ok: true; detail: string } | { ok: false; reason: string } | undefined {
  const first = replies[0];
  if (first === undefined) return undefined;
  if (sentAuth) {
    if (first.startsWith('-')) return { ok: false, reason: describeAuthError(first.slice(1)) };
    if (first !== '+OK') return { ok: false, reason: `unexpected reply to AUTH: ${first.slice(0, 100)}` };
  }
  const ping = replies[expected - 1];
  if (ping === undefined) return undefined;
  if (ping === '+PONG') return { ok: true, detail: 'PONG' };
  if (ping.startsWith('-')) return { ok: false, reason: describePingError(ping.slice(1)) };
  return { ok: false, reason: `unexpected reply to PING: ${ping.slice(0, 100)}` };
}

function describeAuthError(err: string): string {
  const code = err.split(' ', 1)[0] ?? '';
  if (code === 'WRONGPASS' || /invalid password/i.test(err)) return 'authentication failed: wrong password (or user) [WRONGPASS]';
  if (/without any password configured|no password is set/i.test(err)) return 'AUTH was sent but the server has no password configured: remove the password from the probe';
  return `AUTH failed: ${err.slice(0, 200)}`;
}

function describePingError(err: string): string {
  const code = err.split(' ', 1)[0] ?? '';
  if (code === 'NOAUTH') return 'authentication required [NOAUTH]: give the password in the URL (redis://:PASSWORD@host:port) or as `password`';
  if (code === 'LOADING') return 'server is loading its dataset [LOADING]';
  if (code === 'MASTERDOWN') return 'replica has no link to its master [MASTERDOWN]';
  return `PING failed: ${err.slice(0, 200)}`;
}
