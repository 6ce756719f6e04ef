// postgres: ready when a connection is accepted and `query` (default `select 1`) succeeds.
// Row rule (so the same probe serves `once.skipIf`): a statement that returns a result set
// (SELECT, VALUES, SHOW, … RETURNING) must return at least one row — `select 1 from base_user
// limit 1` fails on an empty table; a statement without a result set (SET, DO, …) only has to
// succeed. With several statements, the last one decides.
// The client is ended on every path (pg's own connect/statement timeouts and our abort), and no
// error text carries the password.

import type pg from 'pg';
import type { PostgresProbe } from '../config/types.ts';
import { redactText, redactUrl } from '../util/redact.ts';
import { attempt, failure } from './abort.ts';
import { describeNetError } from './errors.ts';
import type { Probe, ProbeContext } from './types.ts';

// pg is imported on first use: a daemon without postgres probes never pays its ~12 MiB.
const DEFAULT_TIMEOUT_MS = 5000;

export interface PgTarget {
  config: pg.ClientConfig;
  /** Literal secrets to mask in any text derived from this connection. */
  secrets: string[];
  /** The URL with its password masked, for labels. */
  shown: string;
}

/** Client options for a URL; `database` overrides the URL's database. */
export function pgTarget(url: string, timeoutMs: number, database?: string): PgTarget {
  const secrets: string[] = [];
  try {
    const u = new URL(url);
    if (u.password) secrets.push(decodeURIComponent(u.password), u.password);
  } catch {
    // pg accepts a few non-URL forms too; redactText still masks key=value passwords.
  }
  let connectionString = url;
  if (database !== undefined) {
    // pg lets the connection string win over a `database` option, so the URL itself must say it.
    try {
      const u = new URL(url);
      u.pathname = `/${encodeURIComponent(database)}`;
      connectionString = u.toString();
    } catch {
      // not a URL: the option below is all we can do
    }
  }
  const config: pg.ClientConfig = {
    connectionString,
    connectionTimeoutMillis: Math.max(1, Math.round(timeoutMs)),
    statement_timeout: Math.max(1, Math.round(timeoutMs)),
    query_timeout: Math.max(1, Math.round(timeoutMs)),
    application_name: 'bk-supervisor',
  };
  if (database !== undefined) config.database = database;
  return { config, secrets, shown: redactUrl(url) };
}

/** One sentence for a pg/network error: message, SQLSTATE in brackets, password masked. */
export function describePgError(err: unknown, secrets: readonly string[]): string {
  const e = err as { code?: unknown; message?: unknown; severity?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  let text: string;
  if (/client password must be a string|no password supplied/i.test(message)) {
    text = 'the server asks for a password and none was given (put it in the URL: postgres://user:PASSWORD@host:port/db)';
  } else if (message === 'timeout expired') {
    text = 'connect timed out';
  } else if (typeof e?.severity === 'string' && typeof e.code === 'string') {
    text = `${message} [${e.code}]`; // a server-side error with its SQLSTATE
  } else {
    text = describeNetError(err);
  }
  return redactText(text, secrets);
}

export function createPostgresProbe(spec: PostgresProbe, ctx: ProbeContext): Probe {
  const query = spec.query?.trim() || 'select 1';
  const timeoutMs = ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const target = pgTarget(spec.postgres, timeoutMs);
  const label = `postgres ${target.shown}${spec.query ? ` (${query.length > 60 ? `${query.slice(0, 57)}...` : query})` : ''}`;

  return {
    label,
    check: (signal) =>
      attempt(signal, label, async (finish, addCleanup) => {
        const { default: pgLib } = await import('pg');
        const client = new pgLib.Client(target.config);
        // A server that goes away mid-attempt emits 'error' on the client; unhandled, it would crash the daemon.
        client.on('error', () => undefined);
        addCleanup(() => void client.end().catch(() => undefined));
        try {
          await client.connect();
          const res = (await client.query(query)) as pg.QueryResult | pg.QueryResult[];
          const last = Array.isArray(res) ? res[res.length - 1] : res;
          if (last && last.fields.length > 0 && last.rows.length === 0) {
            finish(failure(label, 'query returned no rows'));
          } else {
            finish({ ok: true, detail: last && last.fields.length > 0 ? `${last.rows.length} row(s)` : 'query ok' });
          }
        } catch (err) {
          finish(failure(label, describePgError(err, target.secrets)));
        }
      }),
  };
}
