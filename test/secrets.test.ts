// Which values the daemon masks (src/util/secrets.ts): the config's secret env, URL passwords
// anywhere in the config, a probe's password field, and secrets inherited from the environment —
// without turning ordinary words (a dependency named `secret-store`'s `healthy`, a
// TOX_TESTENV_PASSENV list, FOO_TOKEN=1) into *** everywhere.

import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/validate.ts';
import type { ResolvedConfig } from '../src/config/types.ts';
import { daemonSecrets, inheritedSecrets, unitSecrets } from '../src/util/secrets.ts';

function resolved(user: unknown, env: NodeJS.ProcessEnv): ResolvedConfig {
  const r = resolveConfig(user, { file: '/tmp/bksup-secrets/supervisor.config.ts', cwd: '/tmp/bksup-secrets', env });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

describe('secrets', () => {
  it('takes inherited secrets by name, skipping short, trivial and list-like ones', () => {
    const env = { APP_DB_PASSWORD: 'hunter22', GITHUB_TOKEN: 'ghp_abcdef', SERVICE_KEY: 'k3y-value', FOO_TOKEN: '1', DEBUG_SECRET: 'true', TOX_TESTENV_PASSENV: 'HOME PATH', KEYBOARD: 'us-intl', PATH: '/usr/bin' };
    expect(inheritedSecrets(env).sort()).toEqual(['ghp_abcdef', 'hunter22', 'k3y-value']);
  });

  it('collects URL passwords of probes, tasks and verify, and a probe password field, but not map keys', () => {
    const config = resolved(
      {
        env: { DB_PASSWORD: 'cfgpass1' },
        units: {
          'secret-store': { command: 'x', healthcheck: { redis: 'redis://127.0.0.1:6379', password: 'redisfield1' } },
          db: { kind: 'task', postgres: { url: 'postgres://u:taskpw1@127.0.0.1/db', ensureDatabases: ['m'] } },
          web: { command: 'x', dependsOn: { 'secret-store': 'healthy' }, healthcheck: { postgres: 'postgres://u:probepw1@127.0.0.1/db' } },
        },
        verify: [{ name: 'login', url: 'http://admin:verifypw1@127.0.0.1:1/login', method: 'POST', body: { password: 'password' } }],
      },
      {},
    );
    const all = daemonSecrets(config, { APP_API_KEY: 'inherited1' });
    expect(all).toEqual(expect.arrayContaining(['cfgpass1', 'redisfield1', 'taskpw1', 'probepw1', 'verifypw1', 'inherited1']));
    expect(all).not.toContain('healthy');
    expect(all).not.toContain('password');
    expect(unitSecrets(config.units.web!)).toEqual(expect.arrayContaining(['cfgpass1', 'probepw1']));
    // Longest first, so a secret containing another is masked whole.
    expect([...all].sort((a, b) => b.length - a.length)).toEqual(all);
  });
});
