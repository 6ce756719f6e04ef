// db-init stand-in: what BK-Lite's first-run commands do, idempotently —
//   manage.py migrate                 → the SQL files in $DEMO_MIGRATIONS, each applied once
//   manage.py createcachetable        → django_cache
//   manage.py init_login_settings     → the login module of domain.com
//   manage.py create_user admin password --email=admin@bklite.net --is_superuser
// Running it again changes nothing.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pgOptions } from '../lib/env.mjs';
import { hashPassword } from '../lib/password.mjs';

const migrationsDir = process.env.DEMO_MIGRATIONS || join(import.meta.dirname, '..', 'migrations');
const client = new pg.Client(pgOptions());
client.on('error', () => undefined);

async function migrate() {
  await client.query('CREATE TABLE IF NOT EXISTS demo_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  const applied = new Set((await client.query('SELECT name FROM demo_migrations')).rows.map((r) => r.name));
  const files = readdirSync(migrationsDir).filter((f) => f.endsWith('.sql')).sort();
  console.log('Operations to perform:\n  Apply all migrations: demo\nRunning migrations:');
  let count = 0;
  for (const file of files) {
    if (applied.has(file)) continue;
    // One transaction a migration: a failure leaves the database as it was before that file.
    await client.query('BEGIN');
    try {
      await client.query(readFileSync(join(migrationsDir, file), 'utf8'));
      await client.query('INSERT INTO demo_migrations (name) VALUES ($1)', [file]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw new Error(`migration ${file}: ${err.message}`);
    }
    console.log(`  Applying demo.${file.replace(/\.sql$/, '')}... OK`);
    count++;
  }
  if (count === 0) console.log('  No migrations to apply.');
}

async function createCacheTable() {
  await client.query('CREATE TABLE IF NOT EXISTS django_cache (cache_key varchar(255) PRIMARY KEY, value text NOT NULL, expires timestamptz NOT NULL)');
  console.log('createcachetable django_cache: OK');
}

async function initLoginSettings() {
  const r = await client.query("INSERT INTO login_module (name, domain) VALUES ('BK-Lite', 'domain.com') ON CONFLICT (domain) DO NOTHING");
  console.log(`init_login_settings: ${r.rowCount ? 'created login module domain.com' : 'login module domain.com exists'}`);
}

async function createUser(username, password, email) {
  const r = await client.query(
    "INSERT INTO base_user (username, domain, password_hash, email, is_superuser) VALUES ($1, 'domain.com', $2, $3, true) ON CONFLICT (username, domain) DO NOTHING",
    [username, hashPassword(password), email],
  );
  console.log(`create_user ${username}: ${r.rowCount ? 'created' : 'exists'}`);
}

try {
  await client.connect();
  await migrate();
  await createCacheTable();
  await initLoginSettings();
  await createUser('admin', 'password', 'admin@bklite.net');
  console.log('db-init: done');
} catch (err) {
  console.error(`db-init: ${err.message}`);
  process.exitCode = 1;
} finally {
  await client.end().catch(() => undefined);
}
