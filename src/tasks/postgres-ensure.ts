// The `postgres: { url, ensureDatabases }` task: make sure named databases exist (MLflow needs
// `mlflow`, and restarts forever without it). Idempotent and safe to run concurrently: an existing
// database is left alone, and losing a creation race to another client counts as "existing".
// CREATE DATABASE cannot run in a transaction; pg's simple query protocol runs each statement on
// its own, which is exactly that. The password never appears in a result or a log line.

import type pg from 'pg';
import { formatMs } from '../health/duration.ts';
import { describePgError, pgTarget } from '../health/postgres.ts';

export type EnsureDatabasesResult = { ok: true; created: string[]; existing: string[] } | { ok: false; reason: string };

export interface EnsureDatabasesOptions {
  /** Bound on the whole task (connect + checks + creates); default 30s. */
  timeoutMs?: number;
  /** Progress lines for the unit's log (`created database "mlflow"`). */
  log?: (line: string) => void;
}

/** Postgres silently truncates longer identifiers, which would break the existence check. */
const MAX_IDENT_BYTES = 63;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** As SQL wants it: bare when it is a plain lower-case identifier, quoted otherwise. */
export function sqlIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name);
}

export async function ensureDatabases(url: string, names: readonly string[], opts: EnsureDatabasesOptions = {}): Promise<EnsureDatabasesResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const log = opts.log ?? (() => undefined);
  const wanted = [...new Set(names)];
  for (const name of wanted) {
    if (!name || Buffer.byteLength(name) > MAX_IDENT_BYTES || name.includes('\0')) {
      return { ok: false, reason: `database name ${JSON.stringify(name)} is not usable: it must be 1-${MAX_IDENT_BYTES} bytes` };
    }
  }
  if (wanted.length === 0) return { ok: true, created: [], existing: [] };

  // Connect to the URL's own database; with none named, to `postgres` (pg would pick the user's name).
  let database: string | undefined;
  try {
    const path = new URL(url).pathname.replace(/^\//, '');
    if (!path) database = 'postgres';
  } catch {
    // Not a URL form pg parses itself; keep whatever database it names.
  }
  const target = pgTarget(url, timeoutMs, database);
  const where = target.shown;
  // Imported on first use: a daemon without postgres tasks never pays for pg.
  const { default: pgLib } = await import('pg');
  const client = new pgLib.Client(target.config);
  // A dropped connection emits 'error' on the client; unhandled, it would crash the daemon.
  client.on('error', () => undefined);

  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<EnsureDatabasesResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `postgres ${where}: ensureDatabases timed out after ${formatMs(timeoutMs)}` }), timeoutMs);
  });
  const work = (async (): Promise<EnsureDatabasesResult> => {
    try {
      await client.connect();
    } catch (err) {
      return { ok: false, reason: `postgres ${where}: cannot connect: ${describePgError(err, target.secrets)}` };
    }
    try {
      return await createMissing(client, wanted, where, target.secrets, log);
    } catch (err) {
      return { ok: false, reason: `postgres ${where}: ${describePgError(err, target.secrets)}` };
    }
  })();
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    // Ends a hung connect or query too (pg destroys the socket when a query is still active);
    // bounded, so a wedged socket cannot hold the task open.
    let endTimer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([client.end().catch(() => undefined), new Promise((r) => (endTimer = setTimeout(r, 2000)))]);
    clearTimeout(endTimer);
  }
}

/** CREATE DATABASE for each name not there yet; a concurrent creator's win counts as existing. */
async function createMissing(client: pg.Client, wanted: string[], where: string, secrets: readonly string[], log: (line: string) => void): Promise<EnsureDatabasesResult> {
  const created: string[] = [];
  const existing: string[] = [];
  const found = await client.query<{ datname: string }>('select datname from pg_database where datname = any($1::text[])', [wanted]);
  const present = new Set(found.rows.map((r) => r.datname));
  for (const name of wanted) {
    if (present.has(name)) {
      existing.push(name);
      log(`database "${name}" already exists`);
      continue;
    }
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
      created.push(name);
      log(`created database "${name}"`);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // 42P04 duplicate_database; 23505 when a concurrent creator wins the catalog insert race.
      if (code === '42P04' || code === '23505') {
        existing.push(name);
        log(`database "${name}" already exists (created concurrently)`);
      } else if (code === '42501') {
        const role = await currentUser(client);
        return {
          ok: false,
          reason: `role ${quoteIdent(role)} may not create databases: grant it with ALTER ROLE ${sqlIdent(role)} CREATEDB or create ${quoteIdent(name)} as a superuser`,
        };
      } else {
        return { ok: false, reason: `postgres ${where}: CREATE DATABASE ${quoteIdent(name)} failed: ${describePgError(err, secrets)}` };
      }
    }
  }
  return { ok: true, created, existing };
}

async function currentUser(client: pg.Client): Promise<string> {
  try {
    const r = await client.query<{ u: string }>('select current_user as u');
    return r.rows[0]?.u ?? 'current user';
  } catch {
    return 'current user';
  }
}
