// `host:port` for a URL, IPv6 literals bracketed. Apart from control/auth.ts so that client
// commands can use it without loading node:crypto.

import { isIP } from 'node:net';

export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
