// Stops every PM2 app through PM2's own programmatic API, connected to the running daemon
// first, so that only the stop itself is timed (not the start-up of the `pm2` CLI).
//   node pm2-stop.mjs <pm2 package dir>      (PM2_HOME from the environment)
import { createRequire } from 'node:module';

const pm2 = createRequire(import.meta.url)(process.argv[2]);

pm2.connect(false, (err) => {
  if (err) {
    console.error(String(err));
    process.exit(1);
  }
  const t0 = performance.now();
  pm2.stop('all', (err2) => {
    const ms = performance.now() - t0;
    pm2.disconnect();
    if (err2) {
      console.error(String(err2));
      process.exit(1);
    }
    console.log(JSON.stringify({ ms }));
    process.exit(0);
  });
});
