import { describe, expect, test } from 'vitest';
import {
  dependencyClosure,
  dependencyLevels,
  dependents,
  findCycle,
  findCycles,
  levelOf,
  renderGraph,
  topoOrder,
  transitiveDependents,
  type Graph,
} from '../src/graph.ts';

/** `g({ a: ['b'] })` → `{ a: { dependsOn: { b: 'healthy' } } }`. */
function g(spec: Record<string, string[]>): Graph {
  return Object.fromEntries(Object.entries(spec).map(([n, deps]) => [n, { dependsOn: Object.fromEntries(deps.map((d) => [d, 'healthy'])) }]));
}

// The BK-Lite stack's shape.
const stack = g({
  postgres: [],
  redis: [],
  nats: [],
  minio: [],
  'mlflow-db': ['postgres'],
  mlflow: ['mlflow-db', 'postgres', 'minio'],
  'db-init': ['postgres', 'redis', 'nats'],
  nats_listener: ['nats', 'db-init'],
  server: ['postgres', 'redis', 'nats', 'db-init'],
  web: ['server'],
});

describe('topoOrder', () => {
  test('every unit after its dependencies, config order among the ready ones', () => {
    expect(topoOrder(stack)).toEqual(['postgres', 'redis', 'nats', 'minio', 'mlflow-db', 'mlflow', 'db-init', 'nats_listener', 'server', 'web']);
  });

  test('stable: independent units keep config order', () => {
    expect(topoOrder(g({ c: [], b: [], a: [] }))).toEqual(['c', 'b', 'a']);
    expect(topoOrder(g({ web: ['api'], api: [], docs: [] }))).toEqual(['api', 'web', 'docs']);
  });

  test('unknown dependency names are ignored', () => {
    expect(topoOrder(g({ a: ['ghost'] }))).toEqual(['a']);
  });

  test('throws on a cycle, naming it', () => {
    expect(() => topoOrder(g({ a: ['b'], b: ['a'] }))).toThrow('dependency cycle a -> b -> a');
  });
});

describe('cycles', () => {
  test('none in a DAG', () => {
    expect(findCycle(stack)).toBeUndefined();
    expect(findCycles(stack)).toEqual([]);
  });

  test('two and three long, starting at the first unit in config order', () => {
    expect(findCycle(g({ x: [], a: ['b'], b: ['a'] }))).toEqual(['a', 'b', 'a']);
    expect(findCycle(g({ c: ['a'], a: ['b'], b: ['c'] }))).toEqual(['c', 'a', 'b', 'c']);
  });

  test('self loop', () => {
    expect(findCycle(g({ a: ['a'] }))).toEqual(['a', 'a']);
  });

  test('the shortest cycle through the start of a tangled component', () => {
    expect(findCycle(g({ a: ['b', 'c'], b: ['c'], c: ['a'] }))).toEqual(['a', 'c', 'a']);
  });

  test('one cycle per independent component', () => {
    expect(findCycles(g({ a: ['b'], b: ['a'], m: [], c: ['d'], d: ['e'], e: ['c'] }))).toEqual([
      ['a', 'b', 'a'],
      ['c', 'd', 'e', 'c'],
    ]);
  });
});

describe('levels and dependents', () => {
  test('dependencyLevels: level 0 has no dependencies', () => {
    expect(dependencyLevels(stack)).toEqual([
      ['postgres', 'redis', 'nats', 'minio'],
      ['mlflow-db', 'db-init'],
      ['mlflow', 'nats_listener', 'server'],
      ['web'],
    ]);
    expect(levelOf(stack).get('web')).toBe(3);
    expect(dependencyLevels(g({}))).toEqual([]);
  });

  test('dependents are direct, in config order', () => {
    expect(dependents(stack, 'db-init')).toEqual(['nats_listener', 'server']);
    expect(dependents(stack, 'web')).toEqual([]);
  });

  test('transitiveDependents in dependency order', () => {
    expect(transitiveDependents(stack, 'postgres')).toEqual(['mlflow-db', 'mlflow', 'db-init', 'nats_listener', 'server', 'web']);
    expect(transitiveDependents(stack, 'server')).toEqual(['web']);
    expect(transitiveDependents(stack, 'minio')).toEqual(['mlflow']);
  });

  test('dependencyClosure: what `up <units…>` has to start', () => {
    expect(dependencyClosure(stack, ['web'])).toEqual(['postgres', 'redis', 'nats', 'db-init', 'server', 'web']);
    expect(dependencyClosure(stack, ['mlflow', 'ghost'])).toEqual(['postgres', 'minio', 'mlflow-db', 'mlflow']);
  });
});

test('renderGraph: one line per unit in level order', () => {
  const text = renderGraph({
    units: {
      server: { kind: 'process', dependsOn: { nats: 'healthy', 'db-init': 'completed' } },
      nats: { kind: 'compose', dependsOn: {} },
      'db-init': { kind: 'task', dependsOn: { nats: 'healthy' } },
      docs: { kind: 'process', enabled: false, dependsOn: { server: 'started' } },
    },
  });
  expect(text).toBe(['nats (compose)', 'db-init (task) <- nats:healthy', 'server (process) <- nats:healthy, db-init:completed', 'docs (process, disabled) <- server:started'].join('\n'));
});
