// The modules behind the README's guarantees, each with the test files that prove them.
// A mutation run of one module runs only these files: the whole suite under Stryker would take
// hours on a 2-core machine. `mutate` may narrow a file to the lines a guarantee rests on.

export const MODULES = {
  'restart-policy': {
    mutate: ['src/restart-policy.ts'],
    tests: ['test/restart-policy.test.ts', 'test/restart-policy-edges.test.ts'],
  },
  redact: {
    mutate: ['src/util/redact.ts'],
    tests: ['test/redact.test.ts'],
  },
  'daemon-lock': {
    mutate: ['src/daemon-lock.ts'],
    tests: ['test/daemon-lock.test.ts'],
  },
  // The takeover steps that only racing processes exercise, under the race test itself: its
  // workers are separate processes, so the mutant is passed to them (subprocesses) and coverage
  // cannot be measured per test (coverageAnalysis off: every mutant runs the race).
  'daemon-lock-race': {
    mutate: ['src/daemon-lock.ts:61-74'],
    tests: ['test/fault-lock-race.test.ts'],
    testNamePattern: 'take over the same stale lock',
    subprocesses: true,
    coverageAnalysis: 'off',
  },
  'log-files': {
    mutate: ['src/logs/files.ts'],
    tests: ['test/logs-files.test.ts'],
  },
  'tree-kill': {
    // stopTree and the tree bookkeeping it relies on (TreeMemory, signalGroup, signalPids).
    mutate: ['src/units/child.ts:183-318'],
    tests: ['test/stop-tree.test.ts'],
  },
};
