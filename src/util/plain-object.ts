// Whether a value is a record of keys (what a config's objects are), without loading the config
// schema (and zod) to ask.

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
