// Real config files, written as TypeScript into temp dirs and loaded the way `bksup` does.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { OWN_CONFIG } from '../src/config/find.ts';
import { findConfigFile, loadConfig } from '../src/config/load.ts';

const INDEX = fileURLToPath(new URL('../src/index.ts', import.meta.url));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bksup-load-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const header = `import { defineConfig, type UserConfig } from ${JSON.stringify(INDEX)};\n`;

async function load(files: Record<string, string>, opts: { configPath?: string; env?: NodeJS.ProcessEnv } = {}) {
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return loadConfig({ cwd: dir, env: opts.env ?? {}, ...(opts.configPath !== undefined ? { configPath: opts.configPath } : {}) });
}

describe('loading a TypeScript config file', () => {
  test('object form with TypeScript-only syntax', async () => {
    const r = await load({
      'supervisor.config.ts': `${header}
interface Ports { server: number }
enum Mode { Dev = 'dev' }
const ports: Ports = { server: 18001 };
export default defineConfig({
  env: { MODE: Mode.Dev },
  units: {
    server: { command: \`uvicorn --port \${ports.server}\`, healthcheck: { http: 'http://127.0.0.1:' + ports.server + '/' } },
  },
} satisfies UserConfig);
`,
    });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.config.file).toBe(join(dir, 'supervisor.config.ts'));
    expect(r.config.units.server).toMatchObject({ kind: 'process', command: 'uvicorn --port 18001', configEnv: { MODE: 'dev' } });
  });

  test('function form, sync and async', async () => {
    const sync = await load({ 'supervisor.config.ts': `${header}export default defineConfig(() => ({ units: { a: { command: 'x' } } }));\n` });
    expect(sync.ok && Object.keys(sync.config.units)).toEqual(['a']);
    const asyncForm = await load({
      'supervisor.config.ts': `${header}export default defineConfig(async () => {
  await new Promise((r) => setImmediate(r));
  return { units: { b: { kind: 'task', command: 'echo hi' } } };
});\n`,
    });
    expect(asyncForm.ok && asyncForm.config.units.b?.kind).toBe('task');
  });

  test('the file is imported fresh on every load (a reload sees edits)', async () => {
    const first = await load({ 'supervisor.config.ts': `${header}export default defineConfig({ units: { one: { command: 'x' } } });\n` });
    const second = await load({ 'supervisor.config.ts': `${header}export default defineConfig({ units: { two: { command: 'x' } } });\n` });
    expect(first.ok && Object.keys(first.config.units)).toEqual(['one']);
    expect(second.ok && Object.keys(second.config.units)).toEqual(['two']);
  });

  test('works inside an ESM package and imports sibling TypeScript modules', async () => {
    const r = await load({
      'package.json': '{ "type": "module" }',
      'ports.ts': 'export const PORT: number = 3011;\n',
      'supervisor.config.ts': `${header}import { PORT } from './ports.ts';\nexport default defineConfig({ units: { web: { command: 'next dev -p ' + PORT } } });\n`,
    });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.config.units.web).toMatchObject({ command: 'next dev -p 3011' });
  });

  test('plain default export without defineConfig, in a CommonJS package', async () => {
    const r = await load({ 'package.json': '{ "type": "commonjs" }', 'supervisor.config.ts': `export default { units: { a: { command: 'x' } } };\n` });
    expect(r.ok).toBe(true);
  });

  test('validation errors name the config file', async () => {
    const r = await load({ 'supervisor.config.ts': `export default { units: { server: { comand: 'x' } } };\n` });
    expect(r).toEqual({
      ok: false,
      errors: [
        expect.stringContaining('supervisor.config.ts: units.server.command: missing required key "command"'),
        'supervisor.config.ts: units.server.comand: unknown key "comand" (did you mean "command"?)',
      ],
      // What a reload watches, also when the config is refused.
      sources: [expect.stringMatching(/\/supervisor\.config\.ts$/)],
    });
  });

  test('a relative root is relative to the config file', async () => {
    const r = await load({ 'conf/supervisor.config.ts': `export default { root: '..', units: { a: { command: 'x', cwd: 'srv' } } };\n` }, { configPath: 'conf' });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.config.root).toBe(dir);
    expect(r.config.units.a).toMatchObject({ cwd: join(dir, 'srv') });
  });
});

describe('finding the file', () => {
  test('supervisor.config.ts first, then .mts, .js, .mjs', async () => {
    await writeFile(join(dir, 'supervisor.config.mjs'), `export default { units: { fromMjs: { command: 'x' } } };\n`);
    let r = await loadConfig({ cwd: dir, env: {} });
    expect(r.ok && Object.keys(r.config.units)).toEqual(['fromMjs']);
    await writeFile(join(dir, 'supervisor.config.ts'), `export default { units: { fromTs: { command: 'x' } } };\n`);
    r = await loadConfig({ cwd: dir, env: {} });
    expect(r.ok && Object.keys(r.config.units)).toEqual(['fromTs']);
  });

  test('an explicit path wins over SUPERVISOR_CONFIG, which wins over the default name', async () => {
    await writeFile(join(dir, 'supervisor.config.ts'), `export default { units: { byDefault: { command: 'x' } } };\n`);
    await writeFile(join(dir, 'env.config.ts'), `export default { units: { byEnv: { command: 'x' } } };\n`);
    await writeFile(join(dir, 'flag.config.ts'), `export default { units: { byFlag: { command: 'x' } } };\n`);
    const env = { SUPERVISOR_CONFIG: 'env.config.ts' };
    const byEnv = await loadConfig({ cwd: dir, env });
    expect(byEnv.ok && Object.keys(byEnv.config.units)).toEqual(['byEnv']);
    const byFlag = await loadConfig({ cwd: dir, env, configPath: join(dir, 'flag.config.ts') });
    expect(byFlag.ok && Object.keys(byFlag.config.units)).toEqual(['byFlag']);
    expect(findConfigFile({ cwd: dir, env: {} })).toEqual({ ok: true, file: join(dir, 'supervisor.config.ts'), via: 'dir' });
  });

  test('no config file', async () => {
    expect(await loadConfig({ cwd: dir, env: {} })).toEqual({
      ok: false,
      errors: [`no supervisor.config.ts in ${dir} or above it: create one (see README), pass --config, or run inside a BK-Lite checkout (or set BKLITE_ROOT) for bk-supervisor's BK-Lite config`],
    });
  });

  test("inside a BK-Lite checkout without a config of its own, or with BKLITE_ROOT: bk-supervisor's own config", () => {
    const checkout = join(dir, 'bk-lite');
    mkdirSync(join(checkout, 'server', 'apps'), { recursive: true });
    writeFileSync(join(checkout, 'docker-compose.dev.yml'), 'services: {}\n');
    const own = { ok: true, file: OWN_CONFIG, via: 'bklite' };
    expect(findConfigFile({ cwd: join(checkout, 'server', 'apps'), env: {} })).toEqual(own);
    expect(findConfigFile({ cwd: dir, env: { BKLITE_ROOT: checkout } })).toEqual(own);
    expect(existsSync(OWN_CONFIG)).toBe(true);
    // A config of the checkout's own still wins (here, or in a directory above), and --config always does.
    mkdirSync(join(checkout, 'server', 'apps', 'core'));
    writeFileSync(join(checkout, 'server', 'supervisor.config.ts'), 'export default { units: {} };\n');
    expect(findConfigFile({ cwd: join(checkout, 'server', 'apps', 'core'), env: {} })).toEqual({ ok: true, file: join(checkout, 'server', 'supervisor.config.ts'), via: 'parent' });
    writeFileSync(join(checkout, 'server', 'apps', 'supervisor.config.ts'), 'export default { units: {} };\n');
    expect(findConfigFile({ cwd: join(checkout, 'server', 'apps'), env: {} })).toEqual({ ok: true, file: join(checkout, 'server', 'apps', 'supervisor.config.ts'), via: 'dir' });
    expect(findConfigFile({ cwd: checkout, env: { BKLITE_ROOT: checkout }, configPath: join(checkout, 'server', 'apps', 'supervisor.config.ts') }).ok).toBe(true);
  });

  test('an explicit file that does not exist', async () => {
    expect(await loadConfig({ cwd: dir, env: {}, configPath: 'nope.config.ts' })).toEqual({ ok: false, errors: ['nope.config.ts: config file not found (check --config)'] });
    expect(await loadConfig({ cwd: dir, env: { SUPERVISOR_CONFIG: 'gone.ts' } })).toEqual({ ok: false, errors: ['gone.ts: config file not found (check SUPERVISOR_CONFIG)'] });
  });
});

describe('files that cannot be used', () => {
  test('syntax error: names file, line and column', async () => {
    const r = await load({ 'supervisor.config.ts': `export default {\n  units: { a: { command: 'x' } ,,\n};\n` });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^supervisor\.config\.ts: cannot load the config: .*supervisor\.config\.ts:2:\d+/);
  });

  test('an import that does not resolve', async () => {
    const r = await load({ 'supervisor.config.ts': `import { x } from './missing-helper.ts';\nexport default { units: { a: { command: x } } };\n` });
    expect(r.ok ? '' : r.errors.join('\n')).toMatch(/^supervisor\.config\.ts: cannot load the config: .*missing-helper/);
  });

  test('no default export', async () => {
    const r = await load({ 'supervisor.config.ts': `export const config = { units: {} };\n` });
    expect(r).toEqual({
      ok: false,
      errors: ['supervisor.config.ts: no default export (end the file with: export default defineConfig({ units: { ... } }); found only named exports: config)'],
      sources: [expect.stringMatching(/\/supervisor\.config\.ts$/)],
    });
  });

  test('default export of the wrong type', async () => {
    const r = await load({ 'supervisor.config.ts': `export default 'units';\n` });
    expect(r.ok ? '' : r.errors[0]).toBe(
      'supervisor.config.ts: the default export is string "units", expected an object or a function returning one (export default defineConfig({ units: { ... } }))',
    );
    const fn = await load({ 'supervisor.config.ts': `export default async () => [1, 2];\n` });
    expect(fn.ok ? '' : fn.errors[0]).toContain('the default export is an array, expected an object');
  });

  test('a config function that throws; secrets in its message are masked', async () => {
    const r = await load({
      'supervisor.config.ts': `export default async () => { throw new Error('cannot reach postgres://admin:s3cretpw@db/x with password=hunter22'); };\n`,
    });
    expect(r.ok ? '' : r.errors[0]).toBe('supervisor.config.ts: the config function threw: cannot reach postgres://admin:***@db/x with password=***');
  });

  test('a top-level throw while importing', async () => {
    const r = await load({ 'supervisor.config.ts': `if (true) throw new TypeError('bad setup');\nexport default {};\n` });
    expect(r.ok ? '' : r.errors[0]).toBe('supervisor.config.ts: cannot load the config: TypeError: bad setup (fix the file or what it imports)');
  });
});
