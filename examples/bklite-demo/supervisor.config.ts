// The BK-Lite demo stack: the real stack's units, dependencies, probes and checks, runnable on
// any machine with PostgreSQL, redis-server and nats-server installed — no BK-Lite checkout, no
// Docker. `npx bksup up` here (or `npm run supervise` in the repository root without a BK-Lite
// checkout) starts it; README.md lists the ports and how to break it on purpose.
//
// Ports, passwords and the data directory come from the environment (defaults in stack.ts):
// POSTGRES_PORT 15432, REDIS_PORT 16380, NATS_PORT 14222, SERVER_PORT 18001, WEB_PORT 3011,
// MLFLOW_PORT 15000, BKLITE_DEMO_DATA (default ./.data).

import { defineConfig } from '../../src/index.ts';
import { demoConfig } from './stack.ts';

export default defineConfig(() => demoConfig({ root: import.meta.dirname }));
