// nats_listener stand-in (`manage.py nats_listener` in BK-Lite): serves the RPC functions the
// server calls over NATS. Subject `{namespace}.{function}`, queue group = subject (so several
// listeners share the work), request `{"args":[...],"kwargs":{...}}`, reply
// `{"success":true,"result":...}` or `{"success":false,"error":...,"message":...}`.

import { connect, JSONCodec } from 'nats';
import pg from 'pg';
import { NATS_NAMESPACE, NATS_SERVERS, onShutdown, pgOptions } from '../lib/env.mjs';

const codec = JSONCodec();
const pool = new pg.Pool({ ...pgOptions(), max: 4 });
pool.on('error', (err) => console.error(`postgres: ${err.message}`));

/** The RPC functions this listener serves. */
const functions = {
  async get_login_module_domain_list() {
    const { rows } = await pool.query('SELECT domain FROM login_module WHERE enabled ORDER BY id');
    return rows.map((r) => r.domain);
  },
};

const nc = await connect({ servers: NATS_SERVERS, name: 'bklite-demo nats_listener', maxReconnectAttempts: -1, reconnectTimeWait: 500 });
console.log(`connected to ${nc.getServer()}`);

async function serve(name, fn) {
  const subject = `${NATS_NAMESPACE}.${name}`;
  const sub = nc.subscribe(subject, { queue: subject });
  console.log(`listening on ${subject} (queue ${subject})`);
  for await (const msg of sub) {
    let reply;
    try {
      const req = msg.data.length ? codec.decode(msg.data) : {};
      const args = Array.isArray(req?.args) ? req.args : [];
      const kwargs = req?.kwargs && typeof req.kwargs === 'object' ? req.kwargs : {};
      reply = { success: true, result: await fn(...args, kwargs) };
    } catch (err) {
      console.error(`${subject}: ${err.message}`);
      reply = { success: false, error: err.code ?? err.name ?? 'Error', message: err.message };
    }
    msg.respond(codec.encode(reply));
  }
}

await nc.flush();
const served = Object.entries(functions).map(([name, fn]) => serve(name, fn));
// Subscriptions are registered once the flush above round-trips; only then is the listener ready.
await nc.flush();
console.log('nats_listener ready');

onShutdown(async () => {
  await nc.drain();
  await Promise.allSettled(served);
  await pool.end();
});

nc.closed().then((err) => {
  if (err) {
    console.error(`NATS connection closed: ${err.message}`);
    process.exit(1);
  }
});
