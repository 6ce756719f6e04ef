// Live config reload through the real CLI: an invalid edit leaves every process alone and is
// reported everywhere `up` would report it; a valid edit applies only the difference.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX, controlFile, runCli, startCli, units, waitForControl, writeConfig, type RunningCli, downAndRemove } from './helpers/daemon.ts';
import { waitFor } from './helpers/wait.ts';

const FOREVER = `${JSON.stringify(process.execPath)} -e "setInterval(() => {}, 1e9)"`;

let dir: string;
let cli: RunningCli;

type Row = Awaited<ReturnType<typeof units>>[number];
const byName = async (): Promise<Map<string, Row>> => new Map((await units(dir)).map((u) => [u.name, u]));
const pidsOf = async (): Promise<Record<string, number | null>> => Object.fromEntries([...(await byName())].map(([n, u]) => [n, u.pid]));

async function lastReload(): Promise<{ ok?: boolean; trigger?: string; summary?: string; errors?: string[]; ts?: number }> {
  const c = controlFile(dir)!;
  const res = await fetch(`http://127.0.0.1:${c.port}/api/reload`, { headers: { authorization: `Bearer ${c.token}` } });
  return (await res.json()) as { ok?: boolean };
}

/** Waits for a reload newer than `after` (ms) and returns it. */
async function reloadAfter(after: number): Promise<Awaited<ReturnType<typeof lastReload>>> {
  return waitFor(async () => {
    const r = await lastReload();
    return r.ts !== undefined && r.ts > after ? r : undefined;
  }, { message: 'a reload', timeout: 30_000 });
}

const allUp = async (names: string[]): Promise<void> => {
  await waitFor(async () => {
    const m = await byName();
    return names.every((n) => ['healthy', 'completed', 'skipped'].includes(m.get(n)?.state ?? '')) && [...m.keys()].sort().join() === [...names].sort().join();
  }, { message: `${names.join(', ')} up`, timeout: 30_000 });
};

const unit = (extra = ''): string => `{ command: ${JSON.stringify(FOREVER)}${extra} }`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bksup-reload-'));
  writeFileSync(join(dir, 'app.env'), 'GREETING=hello\n');
  writeConfig(dir, `{ units: { a: ${unit()}, b: ${unit(", dependsOn: { a: 'healthy' }")}, c: ${unit(", env: { MODE: 'one' }")}, e: ${unit(", envFile: 'app.env'")}, t: { kind: 'task', command: 'true', once: true } } }`);
  cli = startCli(dir, ['up']);
  await waitForControl(dir);
  await waitFor(() => cli.output().includes('bksup: reloading the config when it'), { message: 'config watch in place', timeout: 30_000 });
  await allUp(['a', 'b', 'c', 'e', 't']);
}, 60_000);

afterAll(() => downAndRemove(dir, cli), 60_000);

describe('reload', () => {
  it('an invalid edit leaves every pid unchanged and reports the errors as up does', async () => {
    const before = await pidsOf();
    const t0 = Date.now();
    writeConfig(dir, `{ units: { a: ${unit()}, b: ${unit(", dependsOn: { natz: 'healthy' }")} } }`);
    const r = await reloadAfter(t0);
    expect(r.ok).toBe(false);
    expect(r.trigger).toBe('supervisor.config.ts changed');
    expect(r.errors!.join('\n')).toContain('units.b.dependsOn.natz: unknown unit "natz"');
    expect(await pidsOf()).toEqual(before);
    // Terminal: the same words as a refused `up`; status and supervisor.log say it too.
    await waitFor(() => cli.output().includes('reload (supervisor.config.ts changed): the config is not valid, nothing was changed:'));
    expect(cli.output()).toMatch(/\n {2}supervisor\.config\.ts: units\.b\.dependsOn\.natz: unknown unit "natz"/);
    const status = await runCli(dir, ['status']);
    expect(status.output).toContain('the config is not valid, nothing was changed');
    expect(status.output).toContain('unknown unit "natz"');
    await waitFor(() => readFileSync(join(dir, 'logs', 'supervisor.log'), 'utf8').includes('config reload refused'));
    // `bksup reload` refuses it too, with the exit code of a bad config.
    const cmd = await runCli(dir, ['reload']);
    expect(cmd.code).toBe(2);
    expect(cmd.output).toContain('bksup: the config is not valid, nothing was changed:\n  supervisor.config.ts: units.b.dependsOn.natz');
    expect(await pidsOf()).toEqual(before);
  }, 60_000);

  it('a valid edit restarts only the changed unit, starts added units and stops removed ones', async () => {
    const before = await pidsOf();
    const t0 = Date.now();
    // c: env changed; b: removed; d: added; t: only its restart settings changed (same fingerprint).
    writeConfig(dir, `{ units: { a: ${unit()}, c: ${unit(", env: { MODE: 'two' }")}, d: ${unit(", dependsOn: { a: 'healthy' }")}, e: ${unit(", envFile: 'app.env'")}, t: { kind: 'task', command: 'true', once: true, restart: { policy: 'on-failure' } } } }`);
    const r = await reloadAfter(t0);
    expect(r.ok).toBe(true);
    await allUp(['a', 'c', 'd', 'e', 't']);
    const after = await byName();
    expect(after.get('a')!.pid).toBe(before.a);
    expect(after.get('e')!.pid).toBe(before.e);
    expect(after.get('c')!.pid).not.toBe(before.c);
    expect(after.has('b')).toBe(false);
    expect(before.b && isRunning(before.b)).toBe(false);
    // A once task whose fingerprint did not change is not run again.
    expect(after.get('t')!.state).toBe('skipped');
    expect(r.summary).toContain('started d');
    expect(r.summary).toContain('stopped b');
    expect(r.summary).toMatch(/restarted c, t/);
  }, 60_000);

  it('an env file edit restarts the units reading it; bksup reload with nothing changed restarts nothing', async () => {
    const before = await pidsOf();
    const t0 = Date.now();
    writeFileSync(join(dir, 'app.env'), 'GREETING=bye\n');
    const r = await reloadAfter(t0);
    expect(r.ok).toBe(true);
    expect(r.trigger).toBe('app.env changed');
    await waitFor(async () => {
      const e = (await byName()).get('e')!;
      return e.state === 'healthy' && e.pid !== before.e;
    });
    const mid = await pidsOf();
    expect(mid.a).toBe(before.a);
    expect(mid.c).toBe(before.c);

    const cmd = await runCli(dir, ['reload']);
    expect(cmd.code).toBe(0);
    expect(cmd.output).toContain('config reloaded: no unit changed');
    expect(await pidsOf()).toEqual(mid);
  }, 60_000);

  it('a once task whose command changed runs again', async () => {
    const t0 = Date.now();
    writeConfig(dir, `{ units: { a: ${unit()}, c: ${unit(", env: { MODE: 'two' }")}, d: ${unit(", dependsOn: { a: 'healthy' }")}, e: ${unit(", envFile: 'app.env'")}, t: { kind: 'task', command: 'echo ran again', once: true, restart: { policy: 'on-failure' } } } }`);
    await reloadAfter(t0);
    await waitFor(async () => (await byName()).get('t')!.state === 'completed', { message: 't completed' });
    // The file is written a moment after the state is published.
    await waitFor(() => readFileSync(join(dir, 'logs', 't.log'), 'utf8').includes('ran again'), { message: "t's output in its log" });
  }, 60_000);

  it('an edit of a file the config imports reloads it', async () => {
    writeFileSync(join(dir, 'extra.ts'), "export const MODE = 'three';\n");
    let t0 = Date.now();
    writeFileSync(
      join(dir, 'supervisor.config.ts'),
      `import { defineConfig } from ${JSON.stringify(INDEX)};\nimport { MODE } from './extra.ts';\n` +
        `export default defineConfig({ units: { a: ${unit()}, c: { command: ${JSON.stringify(FOREVER)}, env: { MODE } } } });\n`,
    );
    expect((await reloadAfter(t0)).ok).toBe(true);
    await allUp(['a', 'c']);
    const before = await pidsOf();
    t0 = Date.now();
    writeFileSync(join(dir, 'extra.ts'), "export const MODE = 'four';\n");
    const r = await reloadAfter(t0);
    expect(r.trigger).toBe('extra.ts changed');
    expect(r.summary).toBe('restarted c');
    await waitFor(async () => {
      const c = (await byName()).get('c')!;
      return c.state === 'healthy' && c.pid !== before.c;
    });
    expect((await pidsOf()).a).toBe(before.a);
  }, 60_000);
});

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
