// The vitest config Stryker's runner uses: the project's settings, but only the test files of the
// module under mutation (MUTATION_TESTS, set by stryker.config.mjs), one file at a time.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import base from '../vitest.config.ts';

const tests = (process.env.MUTATION_TESTS ?? '').split(',').filter(Boolean);
if (tests.length === 0) throw new Error('MUTATION_TESTS is empty: run through `npm run mutation` (stryker.config.mjs sets it)');

const testNamePattern = process.env.MUTATION_TEST_NAME || undefined;
const setupFiles = process.env.MUTATION_SUBPROCESSES ? [fileURLToPath(new URL('./subprocess-mutant.ts', import.meta.url))] : [];

// Not mergeConfig: it would append to the base `include` instead of replacing it.
export default defineConfig({ test: { ...base.test, include: tests, testNamePattern, setupFiles, maxWorkers: 1, fileParallelism: false } });
