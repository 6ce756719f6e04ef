// mlflow stand-in: like MLflow's server, it needs its backend database at start. Without the
// `mlflow` database it exits non-zero — under `restart: always` a crash loop, the failure the
// mlflow-db task prevents. With it, it serves /health on MLFLOW_PORT.

import { createServer } from 'node:http';
import pg from 'pg';
import { onShutdown, portFrom } from '../lib/env.mjs';

const port = portFrom('MLFLOW_PORT', 15000);
const url = process.env.MLFLOW_DB_URL;
if (!url) {
  console.error('MLFLOW_DB_URL is not set');
  process.exit(2);
}

const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
client.on('error', () => undefined);
try {
  await client.connect();
  await client.query('select 1');
} catch (err) {
  // MLflow prints the SQLAlchemy error and exits.
  console.error(`sqlalchemy.exc.OperationalError: ${err.message}`);
  process.exit(1);
} finally {
  await client.end().catch(() => undefined);
}
console.log('backend store: postgresql (mlflow) OK');

const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('OK');
  }
  res.writeHead(404);
  res.end();
});
server.on('error', (err) => {
  console.error(`cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => console.log(`Listening at: http://127.0.0.1:${port} (mlflow stand-in)`));

onShutdown(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
