// pg-initdb: creates the demo PostgreSQL cluster in $PGDATA the first time, with the password
// from DB_PASSWORD for DB_USER and the database DB_NAME (what the postgres image's entrypoint does
// for BK-Lite's compose service). A no-op when $PGDATA already holds a cluster.
//
// The cluster is built in a sibling directory and renamed into place at the end, so an
// interrupted run never leaves a half-made $PGDATA that would later pass for a real one.

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const PG_SH = join(import.meta.dirname, 'pg.sh');
const pgdata = process.env.PGDATA;
const user = process.env.DB_USER || 'postgres';
const password = process.env.DB_PASSWORD || '';
const database = process.env.DB_NAME || 'bklite';

class Failure extends Error {}

/** Before the work starts: report and exit. Inside it: throw, so `finally` cleans up. */
function fail(message) {
  if (started) throw new Failure(message);
  console.error(`pg-initdb: ${message}`);
  process.exit(1);
}
let started = false;

if (!pgdata) fail('PGDATA is not set (the supervisor config sets it)');
// Why the cluster is not under the demo's data directory (see pg-data.ts), said on every run.
if (process.env.BKLITE_DEMO_PGDATA_NOTE) console.log(`pg-initdb: ${process.env.BKLITE_DEMO_PGDATA_NOTE}`);

if (existsSync(join(pgdata, 'PG_VERSION'))) {
  const version = readFileSync(join(pgdata, 'PG_VERSION'), 'utf8').trim();
  console.log(`pg-initdb: ${pgdata} already holds a PostgreSQL ${version} cluster; nothing to do`);
  process.exit(0);
}
if (existsSync(pgdata) && readdirSync(pgdata).length > 0) {
  fail(`${pgdata} exists, is not empty and holds no PostgreSQL cluster (no PG_VERSION): move it away or remove it`);
}

/** Runs pg.sh (as the PostgreSQL account when we are root); output goes to our log. */
function pg(args, input) {
  const r = spawnSync('/bin/sh', [PG_SH, ...args], { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'inherit', 'inherit'], env: process.env });
  if (r.error) fail(`cannot run ${args[0]}: ${r.error.message}`);
  return r.status ?? 1;
}

const who = spawnSync('/bin/sh', [PG_SH, '--user'], { encoding: 'utf8' });
if (who.status !== 0) fail(`cannot choose the PostgreSQL account: ${who.stderr.trim()}`);
const [account, uidText, gidText] = who.stdout.trim().split(/\s+/);
const uid = Number(uidText);
const gid = Number(gidText);
const asRoot = process.getuid?.() === 0;

const parent = dirname(pgdata);
// Enterable by PostgreSQL's account whatever the umask (pg-data.ts counts on it).
const firstMade = mkdirSync(parent, { recursive: true, mode: 0o755 });
if (firstMade !== undefined) for (let d = parent; d.length >= firstMade.length; d = dirname(d)) chmodSync(d, 0o755);
const building = `${pgdata}.initdb-tmp`;
rmSync(building, { recursive: true, force: true });
mkdirSync(building, { mode: 0o700 });
const pwfile = `${building}.pw`;
writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
if (asRoot) {
  chownSync(building, uid, gid);
  chownSync(pwfile, uid, gid);
}

started = true;
try {
  // The account must be able to reach the directory; as root it is easy to create data under a
  // path only root can traverse (a mkdtemp directory, /root/...).
  if (asRoot) {
    const probe = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', 'test', '-w', building]);
    if (probe.status !== 0) {
      fail(`PostgreSQL runs as '${account}', who cannot write ${building}: give every parent directory o+x (chmod o+x …) or set BKLITE_DEMO_DATA to a directory it can reach`);
    }
  }
  console.log(`pg-initdb: creating a PostgreSQL cluster in ${pgdata} (user ${user}, database ${database}, running as ${account})`);
  const initdb = pg([
    'initdb', '-D', building, '-U', user, `--pwfile=${pwfile}`,
    '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-locale', '--no-instructions',
    // A dev cluster: not fsyncing its files saves seconds on a busy disk.
    '--no-sync',
  ]);
  if (initdb !== 0) fail(`initdb exited with ${initdb}`);
  // Single-user mode creates the application database without starting a server (no port, no race).
  const create = pg(['postgres', '--single', '-D', building, '-c', 'exit_on_error=true', '-c', 'fsync=off', 'postgres'], `CREATE DATABASE "${database.replace(/"/g, '""')}";\n`);
  if (create !== 0) fail(`creating database ${database} exited with ${create}`);
  renameSync(building, pgdata);
  chmodSync(pgdata, 0o700);
  console.log(`pg-initdb: done: ${pgdata}`);
} catch (err) {
  console.error(`pg-initdb: ${err instanceof Failure ? err.message : err.stack}`);
  process.exitCode = 1;
} finally {
  rmSync(pwfile, { force: true });
  rmSync(building, { recursive: true, force: true });
}
