// Socket-level errors in words a person fixing a dev stack understands; the code stays in brackets.

const WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listening)',
  ECONNRESET: 'connection reset by peer',
  EPIPE: 'connection closed by peer',
  ETIMEDOUT: 'connect timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  EADDRNOTAVAIL: 'address not available',
};

/** `connection refused (nothing listening) [ECONNREFUSED]`, or the error's own message. */
export function describeNetError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | undefined;
  // Node reports dual-stack "localhost" failures as an AggregateError whose parts carry the codes.
  if (Array.isArray(e?.errors) && e.errors.length > 0 && e.code === undefined) return describeNetError(e.errors[0]);
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code && WORDS[code]) return `${WORDS[code]} [${code}]`;
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  return code && !message.includes(code) ? `${message} [${code}]` : message;
}
