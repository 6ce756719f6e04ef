// The seed verification of a BK-Lite dev stack, shared by the real config and the demo: the two
// questions the first failed setup could not answer with a green process list — and, for the
// real stack, the same questions asked the way the browser asks them (through the web).

import type { VerifyCheck } from '../../src/index.ts';

/** Straight to the server: the domain list and admin's login. */
export function bkliteVerify(serverUrl: string): VerifyCheck[] {
  return [
    {
      // Empty when no nats_listener answers the RPC the server makes: the sign-in page has no domain.
      name: 'the login page lists domain.com',
      url: `${serverUrl}/api/v1/core/api/get_domain_list/`,
      expect: { result: true, data: { contains: 'domain.com' } },
    },
    {
      // Fails when db-init never ran: there is no `admin` user.
      name: 'admin can log in',
      method: 'POST',
      url: `${serverUrl}/api/v1/core/api/login/`,
      body: { username: 'admin', password: 'password', domain: 'domain.com' },
      expect: { result: true, 'data.token': { exists: true } },
    },
  ];
}

export interface WebVerifyOptions {
  serverUrl: string;
  webUrl: string;
  /** web/.env.local's NEXTAPI_URL as found now (undefined: no file or no key). */
  nextApiUrl: string | undefined;
}

/**
 * The server checks, then the browser's path: the sign-in page asks the web for
 * /api/proxy/core/api/get_domain_list/, which the web forwards to NEXTAPI_URL; with a wrong
 * NEXTAPI_URL every unit is green and the page has no domain. Then headless Chromium opens
 * /auth/signin, sees domain.com and signs in as admin (skipped when no Chromium is installed).
 */
export function bkliteWebVerify(o: WebVerifyOptions): VerifyCheck[] {
  const found = o.nextApiUrl === undefined ? 'not set' : o.nextApiUrl.trim() === '' ? 'blank' : o.nextApiUrl;
  const hint = `the web forwards /api/proxy/* to NEXTAPI_URL of web/.env.local (now ${found}); it must be ${o.serverUrl}`;
  return [
    ...bkliteVerify(o.serverUrl),
    {
      name: 'the web proxy lists domain.com (NEXTAPI_URL reaches the server)',
      url: `${o.webUrl}/api/proxy/core/api/get_domain_list/`,
      expect: { result: true, data: { contains: 'domain.com' } },
      hint,
      // next dev compiles the proxy route on its first request.
      timeout: '2m',
    },
    {
      name: 'admin signs in at /auth/signin (headless Chromium)',
      browser: {
        url: `${o.webUrl}/auth/signin`,
        steps: [
          { waitForText: 'domain.com' },
          { fill: 'input[name="username"], input#username, input[autocomplete="username"]', value: 'admin' },
          { fill: 'input[type="password"]', value: 'password' },
          { click: 'button[type="submit"]' },
          { waitForUrlNot: '/auth/signin' },
        ],
      },
      hint,
      timeout: '2m',
    },
  ];
}
