// The seed verification of a BK-Lite dev stack, shared by the real config and the demo: the two
// questions the first failed setup could not answer with a green process list.

import type { VerifyCheck } from '../../src/index.ts';

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
