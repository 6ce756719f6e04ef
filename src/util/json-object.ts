// A JSON text that must be an object (a protocol frame): its fields, or undefined for anything else.
// Frames come from clients and servers we do not control: malformed text is a value, not a throw.

import { isPlainObject } from './plain-object.ts';

export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isPlainObject(v) ? v : undefined;
}
