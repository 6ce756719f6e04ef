// For tests whose code under mutation runs in processes they start (`node --import tsx …`,
// `bksup up`): Stryker activates a mutant in the test's own process only, and the instrumented
// code of a child process reads the active mutant from this variable instead. Children inherit
// it through process.env.
import { beforeAll, inject } from 'vitest';

beforeAll(() => {
  const id = (inject as (key: string) => unknown)('activeMutant');
  if (id === undefined) delete process.env.__STRYKER_ACTIVE_MUTANT__;
  else process.env.__STRYKER_ACTIVE_MUTANT__ = String(id);
});
