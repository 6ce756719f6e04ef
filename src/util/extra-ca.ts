// NODE_EXTRA_CA_CERTS for the daemon without its start-up cost.
//
// Node 20 reads that file and builds its whole root store (its own ~140 roots plus the file's)
// while it starts, before any JavaScript runs: 40-50 ms of a daemon start-up whose target is
// 150 ms (measured with the Debian CA bundle, which machines behind a corporate proxy often name
// there). The daemon needs those CAs only for the TLS connections it makes itself (an https
// probe or verify check, nats over TLS, postgres with SSL), and those come after the units started.
//
// So bin/bksup starts the daemon without the variable and hands its value over in
// BKSUP_EXTRA_CA_CERTS; bin/bksup.js puts the variable back into the environment at once (the
// children and the config loader inherit it as the user set it) and leaves the file name here,
// under EXTRA_CA_KEY. trustExtraCaCerts(), called once the units were asked to start, makes
// tls.createSecureContext — which every TLS client reaches when it is given no `ca` of its own
// (tls.connect, https, fetch, pg, nats) — trust the default roots plus the file's certificates,
// as Node would have: one shared context, built on the first TLS connection.
// A file that cannot be read or parsed is reported once and ignored, as Node does.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Tls from 'node:tls';

/** Where bin/bksup.js leaves the withheld NODE_EXTRA_CA_CERTS. */
export const EXTRA_CA_KEY = Symbol.for('bk-supervisor.extraCaCerts');

// Options that shape a secure context (lib/internal/tls/secure-context.js): a caller giving any
// of them gets its own context, with the extra CAs only when it gave no `ca`.
const CONTEXT_OPTIONS = [
  'ca', 'cert', 'key', 'pfx', 'passphrase', 'ciphers', 'ecdhCurve', 'dhparam', 'crl', 'sigalgs', 'honorCipherOrder',
  'minVersion', 'maxVersion', 'secureOptions', 'secureProtocol', 'sessionIdContext', 'sessionTimeout', 'ticketKeys',
  'privateKeyEngine', 'privateKeyIdentifier', 'clientCertEngine',
] as const;

let installed = false;

/**
 * When bin/bksup withheld NODE_EXTRA_CA_CERTS from this process, makes TLS trust it again.
 * Synchronous, so that no connection can begin before it; loads node:tls (~10 ms) only then.
 */
export function trustExtraCaCerts(warn: (line: string) => void = (l) => void process.stderr.write(`${l}\n`)): void {
  const file = (globalThis as Record<symbol, unknown>)[EXTRA_CA_KEY];
  if (installed || typeof file !== 'string' || file === '') return;
  installed = true;
  const tls = createRequire(import.meta.url)('node:tls') as typeof Tls;
  const original = tls.createSecureContext;
  // Built on the first TLS connection; null when the file could not be used.
  let extra: { ca: string[]; shared: Tls.SecureContext } | null | undefined;
  const load = (): typeof extra => {
    if (extra !== undefined) return extra;
    try {
      const ca = [...tls.rootCertificates, readFileSync(file, 'utf8')];
      extra = { ca, shared: original({ ca }) };
    } catch (err) {
      warn(`Warning: Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}`);
      extra = null;
    }
    return extra;
  };
  tls.createSecureContext = (options?: Tls.SecureContextOptions): Tls.SecureContext => {
    if (options?.ca !== undefined) return original(options);
    const e = load();
    if (!e) return original(options);
    const own = options !== undefined && CONTEXT_OPTIONS.some((k) => (options as Record<string, unknown>)[k] !== undefined);
    return own ? original({ ...options, ca: e.ca }) : e.shared;
  };
}
