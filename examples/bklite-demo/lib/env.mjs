// What the stand-ins read from their environment: the variables BK-Lite's server reads
// (DB_*, NATS_SERVERS, NATS_NAMESPACE), set by the supervisor config for every unit.

/** node-postgres client options for the application database (or another one on the same server). */
export function pgOptions(database = process.env.DB_NAME || 'bklite') {
  return {
    host: process.env.DB_HOST || '127.0.0.1',
    port: Number(process.env.DB_PORT || 15432),
    user: process.env.DB_USER || 'postgres',
    password: process.env.DB_PASSWORD || '',
    database,
    connectionTimeoutMillis: 5000,
    application_name: `bklite-demo ${process.argv[1]?.split('/').pop() ?? ''}`.trim(),
  };
}

export const NATS_SERVERS = process.env.NATS_SERVERS || 'nats://127.0.0.1:14222';
export const NATS_NAMESPACE = process.env.NATS_NAMESPACE || 'bk_lite';

/** `port` from the environment variable `name`, or `fallback`. */
export function portFrom(name, fallback) {
  const n = Number(process.env[name] || fallback);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`${name}=${process.env[name]} is not a TCP port`);
    process.exit(2);
  }
  return n;
}

/** Calls `stop` once on SIGTERM/SIGINT, then exits 0 (or 1 if stopping threw). */
export function onShutdown(stop) {
  let stopping = false;
  const handler = (sig) => {
    if (stopping) return;
    stopping = true;
    console.log(`${sig}: shutting down`);
    Promise.resolve()
      .then(stop)
      .then(
        () => process.exit(0),
        (err) => {
          console.error(`error while stopping: ${err?.message ?? err}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
