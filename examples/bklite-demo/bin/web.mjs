// web stand-in (`pnpm dev`, next dev on 3011 in BK-Lite): a sign-in page whose domain list comes
// from the server, rendered on request like a Next.js server component. The first request "compiles"
// for WEB_COMPILE_MS (default 1500), as next dev's first compile is slow — which is why the web
// unit's health probe has a long startPeriod.

import { createServer } from 'node:http';
import { onShutdown, portFrom } from '../lib/env.mjs';

const port = portFrom('WEB_PORT', 3011);
const serverUrl = process.env.BKLITE_SERVER_URL || 'http://127.0.0.1:18001';
const compileMs = Number(process.env.WEB_COMPILE_MS ?? 1500);
let compiled;

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function domains() {
  try {
    const res = await fetch(`${serverUrl}/api/v1/core/api/get_domain_list/`, { signal: AbortSignal.timeout(5000) });
    const body = await res.json();
    return Array.isArray(body?.data) ? body.data : [];
  } catch (err) {
    console.warn(`get_domain_list: ${err.cause?.code ?? err.message}`);
    return [];
  }
}

async function signinPage() {
  const list = await domains();
  const options = list.length
    ? list.map((d) => `<option>${escapeHtml(d)}</option>`).join('')
    : '<option disabled>no domain available — is nats_listener running?</option>';
  return `<!doctype html><html><head><title>Sign in | BK-Lite (demo)</title></head><body>
<h1>BK-Lite</h1><form method="post" action="${escapeHtml(serverUrl)}/api/v1/core/api/login/">
<label>Username <input name="username"></label> <label>Password <input type="password" name="password"></label>
<label>Domain <select name="domain">${options}</select></label> <button>Sign in</button></form></body></html>`;
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  void (async () => {
    if (path === '/' || path === '/auth/signin') {
      if (!compiled) {
        console.log(' ○ Compiling /auth/signin ...');
        const started = Date.now();
        compiled = new Promise((r) => setTimeout(r, compileMs)).then(() => console.log(` ✓ Compiled /auth/signin in ${Date.now() - started}ms`));
      }
      await compiled;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(await signinPage());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('This page could not be found.');
    }
    if (res.statusCode >= 400) console.log(` GET ${path} ${res.statusCode}`);
  })();
});

server.on('error', (err) => {
  console.error(`cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => console.log(`  ▲ Next.js (stand-in)\n  - Local: http://127.0.0.1:${port}\n ✓ Ready`));

onShutdown(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
