// The dependency graph between units, as pure functions over `{ name: { dependsOn } }`.
// Config order is the tie-breaker everywhere, so output is stable and matches what the user wrote.
// Dependencies on names that are not in the graph are ignored here (validation reports them).

export interface GraphNode {
  readonly dependsOn: Readonly<Record<string, string>>;
}
export type Graph = Readonly<Record<string, GraphNode>>;

function depsOf(graph: Graph, name: string): string[] {
  const node = graph[name];
  if (!node) return [];
  return Object.keys(node.dependsOn).filter((d) => Object.hasOwn(graph, d));
}

/**
 * Every unit after its dependencies. Among units that are ready at the same time the one
 * written first in the config goes first. Throws on a cycle: validated configs have none.
 */
export function topoOrder(graph: Graph): string[] {
  const names = Object.keys(graph);
  const remaining = new Map(names.map((n) => [n, new Set(depsOf(graph, n))]));
  const order: string[] = [];
  while (remaining.size > 0) {
    // O(n²) on purpose: n is a handful of units and the scan keeps config order trivially.
    const next = names.find((n) => remaining.get(n)?.size === 0);
    if (next === undefined) {
      const cycle = findCycle(graph);
      throw new Error(`dependency cycle ${cycle ? cycle.join(' -> ') : '(unknown)'}`);
    }
    remaining.delete(next);
    order.push(next);
    for (const deps of remaining.values()) deps.delete(next);
  }
  return order;
}

/** One dependency cycle per strongly connected component, each as a path `[a, b, a]`. */
export function findCycles(graph: Graph): string[][] {
  const names = Object.keys(graph);
  const position = new Map(names.map((n, i) => [n, i]));
  const components = stronglyConnected(graph);
  const cycles: string[][] = [];
  for (const comp of components) {
    const members = new Set(comp);
    const start = comp.reduce((a, b) => ((position.get(a) ?? 0) <= (position.get(b) ?? 0) ? a : b));
    const selfLoop = depsOf(graph, start).includes(start);
    if (comp.length === 1 && !selfLoop) continue;
    cycles.push(shortestCycleThrough(graph, start, members));
  }
  return cycles.sort((a, b) => (position.get(a[0] as string) ?? 0) - (position.get(b[0] as string) ?? 0));
}

/** A dependency cycle as a path `[a, b, a]` (a depends on b depends on a), or undefined. */
export function findCycle(graph: Graph): string[] | undefined {
  return findCycles(graph)[0];
}

function shortestCycleThrough(graph: Graph, start: string, members: Set<string>): string[] {
  const parent = new Map<string, string>();
  const queue = [start];
  const seen = new Set([start]);
  while (queue.length > 0) {
    const u = queue.shift() as string;
    for (const v of depsOf(graph, u)) {
      if (!members.has(v)) continue;
      if (v === start) {
        const path = [u];
        for (let p = parent.get(u); p !== undefined; p = parent.get(p)) path.push(p);
        return [...path.reverse(), start];
      }
      if (!seen.has(v)) {
        seen.add(v);
        parent.set(v, u);
        queue.push(v);
      }
    }
  }
  return [start, start]; // unreachable for a real strongly connected component
}

// Tarjan's algorithm; recursion depth is bounded by the number of units.
function stronglyConnected(graph: Graph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of depsOf(graph, v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      out.push(comp);
    }
  };
  for (const name of Object.keys(graph)) if (!index.has(name)) visit(name);
  return out;
}

/** Level of each unit: 0 without dependencies, else 1 + the highest level among its dependencies. */
export function levelOf(graph: Graph): Map<string, number> {
  const levels = new Map<string, number>();
  for (const name of topoOrder(graph)) {
    const deps = depsOf(graph, name);
    levels.set(name, deps.length === 0 ? 0 : 1 + Math.max(...deps.map((d) => levels.get(d) as number)));
  }
  return levels;
}

/**
 * Units grouped by level, each level in config order. Everything in one level may start
 * together once the levels before it are up; stopping walks the levels backwards.
 */
export function dependencyLevels(graph: Graph): string[][] {
  const levels = levelOf(graph);
  const out: string[][] = [];
  for (const name of Object.keys(graph)) {
    const level = levels.get(name) as number;
    while (out.length <= level) out.push([]);
    (out[level] as string[]).push(name);
  }
  return out;
}

/** Units that depend directly on `name`, in config order. */
export function dependents(graph: Graph, name: string): string[] {
  return Object.keys(graph).filter((n) => n !== name && depsOf(graph, n).includes(name));
}

/** Units that depend on `name` directly or through others, in dependency order (stop them in reverse). */
export function transitiveDependents(graph: Graph, name: string): string[] {
  const found = new Set<string>();
  const queue = [name];
  while (queue.length > 0) {
    for (const d of dependents(graph, queue.shift() as string)) {
      if (d !== name && !found.has(d)) {
        found.add(d);
        queue.push(d);
      }
    }
  }
  return topoOrder(graph).filter((n) => found.has(n));
}

/** `names` plus everything they need, directly or not, in dependency order (for `up <units…>`). */
export function dependencyClosure(graph: Graph, names: readonly string[]): string[] {
  const found = new Set<string>();
  const queue = names.filter((n) => Object.hasOwn(graph, n));
  for (const n of queue) found.add(n);
  while (queue.length > 0) {
    for (const d of depsOf(graph, queue.shift() as string)) {
      if (!found.has(d)) {
        found.add(d);
        queue.push(d);
      }
    }
  }
  return topoOrder(graph).filter((n) => found.has(n));
}

export interface RenderableUnit extends GraphNode {
  readonly kind: string;
  readonly enabled?: boolean;
}

/**
 * Text form for `bksup check`, one line per unit in level order:
 * `server (process) <- nats:healthy, db-init:completed`.
 */
export function renderGraph(config: { readonly units: Readonly<Record<string, RenderableUnit>> }): string {
  const lines: string[] = [];
  for (const level of dependencyLevels(config.units)) {
    for (const name of level) {
      const unit = config.units[name] as RenderableUnit;
      const tags = unit.enabled === false ? `${unit.kind}, disabled` : unit.kind;
      const deps = Object.entries(unit.dependsOn).map(([d, cond]) => `${d}:${cond}`);
      lines.push(`${name} (${tags})${deps.length ? ` <- ${deps.join(', ')}` : ''}`);
    }
  }
  return lines.join('\n');
}
