// `npm run mutation [module…]`: one Stryker run per guarantee module (all by default), then a
// table of scores from the JSON reports. Stryker mutates a copy of the project (a sandbox under
// .stryker-tmp), never the working tree.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { MODULES } from './modules.mjs';

const wanted = process.argv.slice(2);
for (const w of wanted) if (!MODULES[w]) throw new Error(`unknown module "${w}"; one of ${Object.keys(MODULES).join(', ')}`);
const names = wanted.length ? wanted : Object.keys(MODULES);

const rows = [];
for (const name of names) {
  const started = Date.now();
  const run = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs'], { stdio: 'inherit', env: { ...process.env, MUTATION_MODULE: name } });
  const seconds = Math.round((Date.now() - started) / 1000);
  if (run.status !== 0) {
    rows.push({ name, seconds, failed: `stryker exited ${run.status ?? run.signal}` });
    continue;
  }
  rows.push({ name, seconds, ...count(JSON.parse(readFileSync(`reports/mutation/${name}.json`, 'utf8'))) });
}

console.log('\nmodule | score | killed | timeout | survived | no coverage | wall');
for (const r of rows) {
  if (r.failed) console.log(`${r.name} | ${r.failed}`);
  else console.log(`${r.name} | ${r.score}% | ${r.Killed} | ${r.Timeout} | ${r.Survived} | ${r.NoCoverage} | ${r.seconds} s`);
}
process.exitCode = rows.some((r) => r.failed) ? 1 : 0;

/** Mutant counts by status; the score is Stryker's: detected / (detected + undetected), errors excluded. */
function count(report) {
  const c = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, Ignored: 0, CompileError: 0, RuntimeError: 0 };
  for (const file of Object.values(report.files)) for (const m of file.mutants) c[m.status] = (c[m.status] ?? 0) + 1;
  const detected = c.Killed + c.Timeout;
  const total = detected + c.Survived + c.NoCoverage;
  return { ...c, score: total ? ((100 * detected) / total).toFixed(1) : '-' };
}
