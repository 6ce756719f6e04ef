// The real BK-Lite development stack. Copy this file (and stack.ts, checks.ts) into your BK-Lite
// checkout, or run it from here: the checkout is $BKLITE_ROOT, else the nearest directory upwards
// from the current one that holds docker-compose.dev.yml.
//
//   BKLITE_ROOT=~/src/bk-lite npx bksup up -c examples/bklite/supervisor.config.ts
//
// Ports and passwords: see stack.ts (BK-Lite's dev defaults, each overridable by environment).

import { bkliteRootProblem, findBkliteCheckout } from '../../src/bklite-root.ts';
import { defineConfig } from '../../src/index.ts';
import { bkliteConfig } from './stack.ts';

export default defineConfig(() => {
  const root = findBkliteCheckout(process.cwd(), process.env);
  if (!root) {
    throw new Error('no BK-Lite checkout found: set BKLITE_ROOT=/path/to/bk-lite or run bksup inside the checkout (the directory with docker-compose.dev.yml)');
  }
  const problem = bkliteRootProblem(root);
  if (problem) throw new Error(`${problem}${process.env.BKLITE_ROOT ? ' (from BKLITE_ROOT)' : ''}`);
  return bkliteConfig({ root });
});
