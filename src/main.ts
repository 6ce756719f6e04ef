// `bksup`'s entry (bin/bksup.js runs it, bundled as dist/bksup.js). The commands users and
// scripts run most (up, status, logs, restart, stop, start, dashboard, down) go straight to their
// code (src/client/fast.ts); everything else — `check`, `verify`, help, any spelling the fast
// parser leaves alone — to the full command line (commander), loaded only then.

import { runFast } from './client/fast.ts';

if (!(await runFast(process.argv.slice(2)))) await import('./cli.ts');
