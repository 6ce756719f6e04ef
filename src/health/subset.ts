// "The reply contains at least this": the matching rule for NATS request probes (and any other
// check that compares an expected JSON shape against a real reply).
//   object   → every expected key present in the actual object and matching (extra keys are fine)
//   array    → every expected element matched by some element of the actual array (order and
//              extra elements do not matter: `result: ['domain.com']` matches ['a', 'domain.com'])
//   scalar   → strictly equal (null only matches null)

/** undefined when `actual` contains `expected`; otherwise where and how it differs. */
export function subsetMismatch(expected: unknown, actual: unknown, path = ''): string | undefined {
  const at = path || '(root)';
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `at ${at}: expected an array, got ${kindOf(actual)}`;
    for (let i = 0; i < expected.length; i++) {
      if (!actual.some((a) => subsetMismatch(expected[i], a) === undefined)) {
        return `at ${at}: no element matches ${short(expected[i])}`;
      }
    }
    return undefined;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return `at ${at}: expected an object, got ${kindOf(actual)}`;
    for (const [k, v] of Object.entries(expected)) {
      if (!(k in actual)) return `at ${path}.${k}: missing`;
      const m = subsetMismatch(v, (actual as Record<string, unknown>)[k], `${path}.${k}`);
      if (m) return m;
    }
    return undefined;
  }
  return Object.is(expected, actual) || expected === actual ? undefined : `at ${at}: expected ${short(expected)}, got ${short(actual)}`;
}

export function isSubset(expected: unknown, actual: unknown): boolean {
  return subsetMismatch(expected, actual) === undefined;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : short(v);
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
