// `npm run supervise` starts this. With a BK-Lite checkout ($BKLITE_ROOT, or a directory above the
// current one or above this repository holding docker-compose.dev.yml) it is the real stack
// (examples/bklite/stack.ts); a checkout without that file (server/manage.py and web/package.json,
// as upstream TencentBlueKing/bk-lite) is refused with what is missing rather than taken for
// "no checkout"; without one, the demo stack (examples/bklite-demo/), which runs
// the same topology on PostgreSQL, redis-server and nats-server processes with Node stand-ins
// for server, web and nats_listener — and says so first thing.

import { join } from 'node:path';
import { bkliteConfig } from './examples/bklite/stack.ts';
import { demoConfig } from './examples/bklite-demo/stack.ts';
import { bkliteRootProblem, findBkliteCheckout } from './src/bklite-root.ts';
import { defineConfig } from './src/index.ts';

export default defineConfig(() => {
  const here = import.meta.dirname;
  // The checkout around the current directory first (bksup run from inside BK-Lite), then the one
  // around this repository (bk-supervisor cloned inside BK-Lite).
  const root = findBkliteCheckout(process.cwd(), process.env) ?? findBkliteCheckout(here, process.env);
  if (root) {
    const problem = bkliteRootProblem(root);
    if (problem) throw new Error(`${problem}${process.env.BKLITE_ROOT ? ' (from BKLITE_ROOT)' : ''}`);
    process.stderr.write(`bksup: BK-Lite checkout ${root}: running the real stack\n`);
    return bkliteConfig({ root });
  }
  process.stderr.write(
    `bksup: no BK-Lite checkout found (set BKLITE_ROOT or run inside it): running the demo stack from examples/bklite-demo (data in ${process.env.BKLITE_DEMO_DATA || join(here, 'examples/bklite-demo/.data')})\n`,
  );
  return demoConfig({ root: here });
});
