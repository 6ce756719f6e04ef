// Where the demo's PostgreSQL keeps its cluster. PostgreSQL refuses to run as root, so as root
// pg.sh runs it as `postgres` (or `nobody`), and that account must be able to enter every
// directory above its data. A checkout under /root (0700 on Debian) or under a `mktemp -d`
// (0700) is not: initdb and the server would fail with "permission denied". Then the cluster goes
// to /var/lib/bk-supervisor/demo-<hash of the data dir>/pg instead (root-owned, 0755 all the way,
// one per checkout), and the reason is said in pg-initdb's first line. Redis and NATS run as the
// user and keep their data where it was.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const PG_FALLBACK_BASE = '/var/lib/bk-supervisor';

export interface PgDataChoice {
  dir: string;
  /** Set when the cluster is not under the data dir: why, for the log. */
  note?: string;
}

interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** The account pg.sh runs PostgreSQL as (undefined when we are not root: then it is us). */
function pgAccount(pgSh: string): Account | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const r = spawnSync('/bin/sh', [pgSh, '--user'], { encoding: 'utf8' });
  const [name, uid, gid] = (r.stdout ?? '').trim().split(/\s+/);
  if (r.status !== 0 || name === undefined || uid === undefined || gid === undefined) return undefined;
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** The first existing directory on the way down to `dir` that `account` cannot enter, if any. */
export function blockingDir(dir: string, account: Pick<Account, 'uid' | 'gid'>): { dir: string; mode: number } | undefined {
  const chain: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    let st;
    try {
      st = statSync(d);
    } catch {
      return undefined; // created later by root with mode 0755: enterable
    }
    const bit = st.uid === account.uid ? 0o100 : st.gid === account.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return { dir: d, mode: st.mode & 0o777 };
  }
  return undefined;
}

export function choosePgData(dataDir: string, pgSh: string): PgDataChoice {
  const wanted = join(dataDir, 'pg');
  const account = pgAccount(pgSh);
  if (!account) return { dir: wanted };
  const blocked = blockingDir(wanted, account);
  if (!blocked) return { dir: wanted };
  const id = createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
  const dir = join(PG_FALLBACK_BASE, `demo-${id}`, 'pg');
  return {
    dir,
    note: `${blocked.dir} is mode 0${blocked.mode.toString(8)}, so PostgreSQL (running as '${account.name}') cannot reach ${wanted}; its cluster lives in ${dir} instead (set BKLITE_DEMO_DATA to choose another place)`,
  };
}
