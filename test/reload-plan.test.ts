// The difference a reload applies, and the config keys behind watch and reload.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/validate.ts';
import type { ResolvedConfig } from '../src/config/types.ts';
import { describePlan, planReload } from '../src/reload-plan.ts';
import { globBase, outermost } from '../src/watch/tree-watcher.ts';
import { describeChange } from '../src/watch/index.ts';

const cwd = mkdtempSync(join(tmpdir(), 'bksup-plan-'));

function config(user: unknown): ResolvedConfig {
  const r = resolveConfig(user, { file: '<inline>', cwd, env: {} });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

const base = { units: { a: { command: 'a' }, b: { command: 'b', dependsOn: ['a'] }, c: { command: 'c', env: { X: '1' } } } };

describe('planReload', () => {
  it('sorts units into added, removed, changed, watch-only updates and unchanged', () => {
    const next = config({
      logs: { dir: 'other-logs' },
      units: { a: { command: 'a', watch: { paths: ['src/**'] } }, c: { command: 'c', env: { X: '2' } }, d: { command: 'd' } },
    });
    const plan = planReload(config(base), next);
    expect(plan).toEqual({ added: ['d'], removed: ['b'], changed: ['c'], updated: ['a'], unchanged: [], notLive: ['logs.dir'] });
    expect(describePlan(plan)).toBe('started d; stopped b; restarted c; updated a (watch settings); not applied until the next up: logs.dir (they cannot change while the daemon runs)');
  });

  it('a change of command, cwd, healthcheck, restart or stop settings is a change', () => {
    const edits = [{ command: 'a2' }, { cwd: 'sub' }, { healthcheck: { tcp: 1234 } }, { restart: { policy: 'always' } }, { stop: { timeout: '1s' } }];
    for (const edit of edits) {
      const plan = planReload(config(base), config({ units: { ...base.units, a: { command: 'a', ...edit } } }));
      expect(plan.changed, JSON.stringify(edit)).toEqual(['a']);
      expect(plan.unchanged).toEqual(['b', 'c']);
    }
  });

  it('an identical config changes nothing', () => {
    expect(describePlan(planReload(config(base), config(base)))).toBe('no unit changed');
  });
});

describe('watch settings', () => {
  it('resolve with defaults; reload is on unless turned off', () => {
    const c = config({ reload: false, units: { a: { command: 'a', watch: { paths: ['server/**/*.py'] } } } });
    expect(c.units.a!.watch).toEqual({ paths: ['server/**/*.py'], ignore: [], debounceMs: 300, cascade: false });
    expect(c.reload).toBe(false);
    expect(config(base).reload).toBe(true);
  });

  it('bad watch settings are named with the fix', () => {
    const r = resolveConfig({ units: { a: { command: 'a', watch: { paths: 'server/**/*.py', debounce: 'soon', cascade: 1 } } } }, { file: '<inline>', cwd, env: {} });
    expect(r.ok).toBe(false);
    const text = r.ok ? '' : r.errors.join('\n');
    expect(text).toContain('units.a.watch.paths: expected an array of glob strings, got string "server/**/*.py" (write ["server/**/*.py"])');
    expect(text).toContain('units.a.watch.debounce');
    expect(text).toContain('units.a.watch.cascade: expected true or false');
  });

  it('watches the static prefix of each glob, outermost directories only', () => {
    expect(globBase(cwd, 'nope/**/*.py')).toBe(cwd);
    expect(outermost(['/r/server', '/r/server/apps', '/r/web', '/r/server2'])).toEqual(['/r/server', '/r/server2', '/r/web']);
    expect(describeChange(['server/apps/core/nats.py'])).toBe('server/apps/core/nats.py changed');
    expect(describeChange(['a.py', 'b.py', 'c.py'])).toBe('a.py and 2 more changed');
  });
});
