// server stand-in (`uvicorn asgi:application` in BK-Lite): the three endpoints the seed checks
// touch, behaving as BK-Lite does when something it needs is missing.
//
//   GET  /admin/login/                       200: the server is up (its health probe)
//   GET  /api/v1/core/api/get_domain_list/   asks a nats_listener over NATS RPC; when none answers,
//                                            {"result":true,"data":[]} — the login page shows no domain
//   POST /api/v1/core/api/login/             admin/password/domain.com checked in PostgreSQL:
//                                            {"result":true,"data":{"token":...}}; without the tables
//                                            (db-init never ran) {"result":false,"message":"System error occurred"}

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { connect, ErrorCode, JSONCodec } from 'nats';
import pg from 'pg';
import { NATS_NAMESPACE, NATS_SERVERS, onShutdown, pgOptions, portFrom } from '../lib/env.mjs';
import { checkPassword } from '../lib/password.mjs';

const port = portFrom('SERVER_PORT', 18001);
const codec = JSONCodec();
const pool = new pg.Pool({ ...pgOptions(), max: 4 });
pool.on('error', (err) => console.error(`postgres: ${err.message}`));

const nc = await connect({ servers: NATS_SERVERS, name: 'bklite-demo server', maxReconnectAttempts: -1, reconnectTimeWait: 500 });
console.log(`NATS: connected to ${nc.getServer()}`);

/** One NATS RPC call, as apps/rpc does it: the reply, or why there is none. */
async function rpc(fn, args = [], kwargs = {}) {
  const subject = `${NATS_NAMESPACE}.${fn}`;
  try {
    const msg = await nc.request(subject, codec.encode({ args, kwargs }), { timeout: 3000 });
    return { ok: true, reply: codec.decode(msg.data) };
  } catch (err) {
    const why = err.code === ErrorCode.NoResponders ? 'no responders (is nats_listener running?)' : err.code === ErrorCode.Timeout ? 'timed out' : err.message;
    return { ok: false, why: `${subject}: ${why}` };
  }
}

async function getDomainList() {
  const r = await rpc('get_login_module_domain_list');
  if (!r.ok) {
    console.warn(`get_domain_list: ${r.why}; answering an empty list`);
    return { result: true, data: [] };
  }
  if (!r.reply?.success) {
    console.warn(`get_domain_list: the listener failed: ${r.reply?.message ?? 'no message'}`);
    return { result: true, data: [] };
  }
  return { result: true, data: r.reply.result };
}

async function login(body) {
  const username = String(body.username ?? '').trim();
  const password = String(body.password ?? '');
  const domain = String(body.domain ?? '');
  if (!username || !password) return { result: false, message: 'Username or password cannot be empty' };
  try {
    const { rows } = await pool.query('SELECT password_hash FROM base_user WHERE username = $1 AND domain = $2', [username, domain || 'domain.com']);
    if (rows.length === 0 || !checkPassword(password, rows[0].password_hash)) {
      console.warn(`Login failed for user: ${username}`);
      return { result: false, message: 'Username or password is incorrect' };
    }
    console.log(`Login successful for user: ${username}`);
    return { result: true, data: { username, domain: domain || 'domain.com', token: randomBytes(24).toString('hex') } };
  } catch (err) {
    console.error(`Login error: ${err.message}`);
    return { result: false, message: 'System error occurred' };
  }
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch {
        resolve({});
      }
    });
  });
}

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type });
  res.end(type === 'application/json' ? JSON.stringify(body) : body);
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  const handle = async () => {
    if (path === '/admin/login/' && req.method === 'GET') return send(res, 200, '<!doctype html><title>Log in | Django site admin</title><form>…</form>', 'text/html; charset=utf-8');
    if (path === '/api/v1/core/api/get_domain_list/' && req.method === 'GET') return send(res, 200, await getDomainList());
    if (path === '/api/v1/core/api/login/' && req.method === 'POST') return send(res, 200, await login(await readJson(req)));
    send(res, 404, { result: false, message: `Not found: ${path}` });
  };
  handle().catch((err) => {
    console.error(`${req.method} ${path}: ${err.stack}`);
    if (!res.headersSent) send(res, 500, { result: false, message: 'System error occurred' });
  });
  // Access log without the GETs that health probes and the sign-in page repeat every second or two.
  res.on('finish', () => {
    if (req.method !== 'GET' || res.statusCode >= 400) console.log(`"${req.method} ${path}" ${res.statusCode}`);
  });
});

server.on('error', (err) => {
  console.error(`cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => console.log(`Uvicorn running on http://127.0.0.1:${port} (stand-in)`));

onShutdown(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await nc.drain();
  await pool.end();
});
