// The corpus of broken configs in test/fixtures/bad-configs/: each `NN-name.config.ts` is copied
// into an empty temp dir as supervisor.config.ts, loaded the way `bksup` loads it, and must be
// rejected with an error containing the text of `NN-name.expected.txt`.
// A fixture that tsc or eslint must not see (the syntax error) is stored as `NN-name.config.ts.txt`.
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config/load.ts';

const CORPUS = fileURLToPath(new URL('./fixtures/bad-configs/', import.meta.url));
const entries = (await readdir(CORPUS)).filter((f) => /\.config\.ts(\.txt)?$/.test(f)).sort();
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

test('the corpus has at least 30 cases, each with an expected message', async () => {
  expect(entries.length).toBeGreaterThanOrEqual(30);
  const files = new Set(await readdir(CORPUS));
  for (const e of entries) expect(files.has(e.replace(/\.config\.ts(\.txt)?$/, '.expected.txt')), e).toBe(true);
});

describe('bad configs', () => {
  test.each(entries)('%s', async (entry) => {
    const expected = (await readFile(join(CORPUS, entry.replace(/\.config\.ts(\.txt)?$/, '.expected.txt')), 'utf8')).trim();
    const dir = await mkdtemp(join(tmpdir(), 'bksup-bad-'));
    dirs.push(dir);
    await copyFile(join(CORPUS, entry), join(dir, 'supervisor.config.ts'));
    const r = await loadConfig({ cwd: dir, env: {} });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.join('\n')).toContain(expected);
    for (const line of r.errors) {
      expect(line.startsWith('supervisor.config.ts: '), line).toBe(true);
      expect(line, 'one line per error').not.toContain('\n');
      expect(line).not.toMatch(/hunter2|:pw@/);
    }
  });
});
