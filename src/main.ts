// `bksup`'s entry (bin/bksup.js runs it, bundled as dist/bksup.js). The client commands users
// and scripts run most (status, logs, restart, stop, start, dashboard, down) go straight to the
// client (src/client/fast.ts); everything else — `up`, `check`, `verify`, help, any spelling the
// fast parser leaves alone — to the full command line, loaded only then.

import { runFast } from './client/fast.ts';

if (!(await runFast(process.argv.slice(2)))) await import('./cli.ts');
