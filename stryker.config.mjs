// Mutation testing of the guarantee modules (see README "Guarantees"). Not part of `npm test`:
// `npm run mutation` runs every module in turn (mutation/run.mjs), `npm run mutation -- redact` one.
// One module per Stryker run, chosen by MUTATION_MODULE (run.mjs sets it; see mutation/modules.mjs).
import { MODULES } from './mutation/modules.mjs';

const name = process.env.MUTATION_MODULE ?? 'restart-policy';
const mod = MODULES[name];
if (!mod) throw new Error(`MUTATION_MODULE=${name}: unknown module; one of ${Object.keys(MODULES).join(', ')}`);
// Read by mutation/vitest.config.ts in the test-runner processes Stryker forks (they inherit env).
process.env.MUTATION_TESTS = mod.tests.join(',');
process.env.MUTATION_TEST_NAME = mod.testNamePattern ?? '';
process.env.MUTATION_SUBPROCESSES = mod.subprocesses ? '1' : '';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'mutation/vitest.config.ts', related: false },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: mod.mutate,
  // Two cores shared with other work: one test runner, and tests that start real processes get
  // generous timeouts (a slow machine must not turn a survivor into a "timeout" kill).
  concurrency: 1,
  coverageAnalysis: mod.coverageAnalysis ?? 'perTest',
  // Stryker allows ignoreStatic only with per-test coverage.
  ignoreStatic: (mod.coverageAnalysis ?? 'perTest') === 'perTest',
  timeoutMS: mod.timeoutMS ?? 20_000,
  timeoutFactor: 3,
  // Anchored: a bare 'logs' would also drop src/logs and test/fixtures/logs from the sandbox.
  ignorePatterns: ['/dist', '/logs', '/bench/.tmp', '/test/.tmp', '/reports', '/.supervisor'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 75, break: null },
};
