// nats: ready when a client can connect (and, with `jetstream: true`, JetStream answers the
// account-info API; with `request`, a responder answers the subject with the expected reply).
// The request form is how "the nats_listener really serves RPC" is probed: connecting alone only
// proves the server is up. One connection per attempt, closed on every path.

import type { ConnectionOptions, ErrorCode as NatsErrorCode, NatsConnection } from 'nats';
import type { NatsProbe } from '../config/types.ts';
import { redactText, redactUrl } from '../util/redact.ts';
import { attempt, failure } from './abort.ts';
import { formatMs } from './duration.ts';
import { subsetMismatch } from './subset.ts';
import type { Probe, ProbeContext } from './types.ts';

const DEFAULT_TIMEOUT_MS = 5000;
const EXCERPT_CHARS = 200;

type ReplyCheck = { kind: 'any' } | { kind: 'regex'; re: RegExp } | { kind: 'json'; expected: unknown };

/** The client's options, and the secrets (credentials, from the URL or the spec) to mask. */
function connectionOptions(spec: NatsProbe, ctx: ProbeContext, timeoutMs: number): { options: ConnectionOptions; secrets: string[] } {
  const secrets: string[] = [spec.pass, spec.token].filter((s): s is string => typeof s === 'string' && s.length > 0);
  const options: ConnectionOptions = {
    servers: spec.nats,
    timeout: timeoutMs,
    reconnect: false,
    maxReconnectAttempts: 0,
    waitOnFirstConnect: false,
    name: `bk-supervisor probe (${ctx.unit})`,
  };
  // Credentials in the URL become explicit options, so the server list never carries them.
  try {
    const u = new URL(spec.nats.includes('://') ? spec.nats : `nats://${spec.nats}`);
    if (u.username) {
      const user = decodeURIComponent(u.username);
      const pass = decodeURIComponent(u.password);
      if (pass) {
        options.user = user;
        options.pass = pass;
        secrets.push(pass);
      } else {
        options.token = user;
        secrets.push(user);
      }
      u.username = '';
      u.password = '';
      options.servers = u.toString().replace(/\/$/, '');
    }
  } catch {
    throw new Error(`unit "${ctx.unit}": healthcheck nats "${redactUrl(spec.nats)}" is not a server URL (e.g. nats://127.0.0.1:14222)`);
  }
  if (spec.user !== undefined) options.user = spec.user;
  if (spec.pass !== undefined) options.pass = spec.pass;
  if (spec.token !== undefined) options.token = spec.token;
  return { options, secrets };
}

export function createNatsProbe(spec: NatsProbe, ctx: ProbeContext): Probe {
  const timeoutMs = ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const { options, secrets } = connectionOptions(spec, ctx, timeoutMs);
  const request = spec.request;
  if (request && (typeof request.subject !== 'string' || !request.subject)) {
    throw new Error(`unit "${ctx.unit}": healthcheck nats request needs a subject`);
  }
  const replyCheck = request ? compileExpect(request.expect, ctx.unit) : { kind: 'any' as const };
  const payload = request ? encodePayload(request.payload) : '';

  const parts = [spec.jetstream ? 'jetstream' : '', request ? `request ${request.subject}` : ''].filter(Boolean);
  const label = `nats ${redactUrl(spec.nats)}${parts.length ? ` (${parts.join(', ')})` : ''}`;
  const clean = (text: string): string => redactText(text, secrets);

  return {
    label,
    check: (signal) =>
      attempt(signal, label, async (finish, addCleanup) => {
        let nc: NatsConnection;
        try {
          // Imported on first use: a daemon without nats probes never pays its ~11 MiB.
          const { connect } = await import('nats');
          nc = await connect(options);
        } catch (err) {
          return finish(failure(label, clean(describeNatsError(err, 'connect'))));
        }
        addCleanup(() => void nc.close().catch(() => undefined));
        const details: string[] = [`connected to ${nc.getServer()}`];

        if (spec.jetstream) {
          try {
            const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: timeoutMs });
            const info = await jsm.getAccountInfo();
            details.push(`jetstream ok (${info.streams} streams)`);
          } catch (err) {
            return finish(failure(label, clean(describeNatsError(err, 'jetstream'))));
          }
        }

        if (request) {
          let text: string;
          try {
            const msg = await nc.request(request.subject, payload, { timeout: timeoutMs });
            text = msg.string();
          } catch (err) {
            return finish(failure(label, clean(describeNatsError(err, 'request', request.subject, timeoutMs))));
          }
          const mismatch = checkReply(replyCheck, text);
          if (mismatch) return finish(failure(label, clean(`reply on ${request.subject} ${mismatch}: ${excerpt(text)}`)));
          details.push(`reply ok`);
        }
        finish({ ok: true, detail: details.join(', ') });
      }),
  };
}

function compileExpect(expect: unknown, unit: string): ReplyCheck {
  if (expect === undefined) return { kind: 'any' };
  if (expect instanceof RegExp) return { kind: 'regex', re: new RegExp(expect.source, expect.flags.replace(/[gy]/g, '')) };
  if (typeof expect === 'string') {
    try {
      return { kind: 'regex', re: new RegExp(expect) };
    } catch (err) {
      throw new Error(`unit "${unit}": healthcheck nats request expect /${expect}/ is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return { kind: 'json', expected: expect };
}

function encodePayload(payload: unknown): string | Uint8Array {
  if (payload === undefined) return '';
  if (typeof payload === 'string' || payload instanceof Uint8Array) return payload;
  return JSON.stringify(payload);
}

/** undefined when the reply is acceptable, else a phrase like `did not match /x/`. */
function checkReply(check: ReplyCheck, text: string): string | undefined {
  switch (check.kind) {
    case 'any':
      return undefined;
    case 'regex':
      return check.re.test(text) ? undefined : `did not match /${check.re.source}/`;
    case 'json': {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return 'is not JSON (expect is an object)';
      }
      const m = subsetMismatch(check.expected, value);
      return m ? `did not match expect (${m})` : undefined;
    }
  }
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (!flat) return '(empty reply)';
  return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS)}…` : flat;
}

// The values of nats's ErrorCode enum used below: the enum is a runtime object, and importing it
// would load nats at start-up.
const ErrorCode = {
  ConnectionRefused: 'CONNECTION_REFUSED',
  Timeout: 'TIMEOUT',
  ConnectionTimeout: 'CONNECTION_TIMEOUT',
  AuthorizationViolation: 'AUTHORIZATION_VIOLATION',
  NoResponders: '503',
  JetStreamNotEnabled: '503',
} as const satisfies Partial<Record<keyof typeof NatsErrorCode, string>>;

function describeNatsError(err: unknown, stage: 'connect' | 'jetstream' | 'request', subject = '', timeoutMs = 0): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (stage === 'connect') {
    if (code === ErrorCode.ConnectionRefused) return 'connection refused (nothing listening) [ECONNREFUSED]';
    if (code === ErrorCode.Timeout || code === ErrorCode.ConnectionTimeout) return 'connect timed out';
    if (code === ErrorCode.AuthorizationViolation || /authorization/i.test(message)) return 'authorization violation: check user/pass/token';
    return `connect failed: ${message}${code && !message.includes(code) ? ` [${code}]` : ''}`;
  }
  if (stage === 'jetstream') {
    if (code === ErrorCode.NoResponders || code === ErrorCode.JetStreamNotEnabled) return 'JetStream is not enabled on this server (start nats-server with -js)';
    if (code === ErrorCode.Timeout) return 'JetStream did not answer the account-info request';
    return `JetStream account info failed: ${message}`;
  }
  if (code === ErrorCode.NoResponders) return `no responders on ${subject} (is the listener running and subscribed?)`;
  if (code === ErrorCode.Timeout) return `no reply on ${subject} within ${formatMs(timeoutMs)}`;
  return `request ${subject} failed: ${message}${code && !message.includes(code) ? ` [${code}]` : ''}`;
}
