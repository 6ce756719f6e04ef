// Where the BK-Lite checkout is: the directory whose docker-compose.dev.yml the real stack is
// built from. Config files call this at load time, so it must be synchronous and cheap.

import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const BKLITE_MARKER = 'docker-compose.dev.yml';

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * `BKLITE_ROOT` from `env` (resolved against cwd; taken as given, even without the marker, so a
 * wrong value fails loudly later instead of silently falling back), else the nearest directory
 * from `cwd` upwards that holds docker-compose.dev.yml; undefined when there is none.
 */
export function findBkliteRoot(cwd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env['BKLITE_ROOT']?.trim();
  if (explicit) return resolve(cwd, explicit);
  let dir = resolve(cwd);
  for (;;) {
    if (isFile(resolve(dir, BKLITE_MARKER))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** A BK-Lite tree without the dev files: the Django project and the Next.js package. */
function looksLikeBklite(dir: string): boolean {
  return isFile(resolve(dir, 'server', 'manage.py')) && isFile(resolve(dir, 'web', 'package.json'));
}

/**
 * Like findBkliteRoot, but also recognises a checkout that lacks docker-compose.dev.yml (the
 * upstream TencentBlueKing/bk-lite has neither it nor dev.sh), so the caller can say what is
 * missing instead of taking the directory for something else.
 */
export function findBkliteCheckout(cwd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env['BKLITE_ROOT']?.trim();
  if (explicit) return resolve(cwd, explicit);
  let dir = resolve(cwd);
  for (;;) {
    if (isFile(resolve(dir, BKLITE_MARKER)) || looksLikeBklite(dir)) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Why `dir` does not look like a BK-Lite checkout, or undefined when it does. */
export function bkliteRootProblem(dir: string): string | undefined {
  const missing = [BKLITE_MARKER, 'server', 'web'].filter((p) => {
    try {
      const st = statSync(resolve(dir, p));
      return p === BKLITE_MARKER ? !st.isFile() : !st.isDirectory();
    } catch {
      return true;
    }
  });
  if (missing.length === 1 && looksLikeBklite(dir)) {
    const devSh = isFile(resolve(dir, 'dev.sh')) ? '' : ' and dev.sh';
    return (
      `${dir} is a BK-Lite checkout without ${BKLITE_MARKER}${devSh} (the upstream TencentBlueKing/bk-lite layout): ` +
      `the dev stack (PostgreSQL on 15432, Redis on 16380, NATS on 14222, …) is defined by the ${BKLITE_MARKER} of the ` +
      `huangpu-dev branch of superfm831010/bk-lite; check out that branch, or add the file, then run again`
    );
  }
  return missing.length ? `${dir} is not a BK-Lite checkout (missing ${missing.join(', ')})` : undefined;
}
