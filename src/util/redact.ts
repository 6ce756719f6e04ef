// Secrets (DSN passwords, tokens, env values named like secrets) must never reach logs,
// `status`, events or error messages. Everything user-visible that may carry one goes through here.

const SECRET_NAME = /PASS|SECRET|TOKEN|KEY|CREDENTIAL/i;
const MASK = '***';

/** `postgres://user:pw@host/db` → `postgres://user:***@host/db`. Leaves non-URLs alone. */
export function redactUrl(url: string): string {
  return url.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):([^@\s/]*)@/gi, (_m, scheme: string, user: string) => `${scheme}${user}:${MASK}@`);
}

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Masks values of secret-named variables and passwords inside URLs. */
export function redactEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = isSecretName(k) ? MASK : redactUrl(v);
  return out;
}

/**
 * Redacts free text: URL passwords, `password=…`/`token: …` pairs, bearer tokens, and any
 * literal secret values passed in (e.g. the control token, env values named *PASS*).
 */
export function redactText(text: string, literals: Iterable<string> = []): string {
  let out = redactUrl(text)
    .replace(/\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, `$1${MASK}`)
    .replace(/\b([A-Za-z_]*(?:pass(?:word)?|secret|token|api[_-]?key)[A-Za-z_]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)/gi, `$1$2${MASK}`);
  for (const lit of literals) {
    if (lit.length >= 4) out = out.split(lit).join(MASK);
  }
  return out;
}

/** Collects the values that must be masked wherever they appear: env values with secret names. */
export function secretValues(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env)
    .filter(([k, v]) => isSecretName(k) && v.length >= 4)
    .map(([, v]) => v);
}

/** Passwords embedded in URL-shaped values (`postgres://u:pw@h/db`), for literal masking. */
export function urlPasswords(values: Iterable<string>): string[] {
  const out: string[] = [];
  for (const v of values) {
    for (const m of v.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:([^@\s/]+)@/gi)) {
      const pw = decodeSafe(m[1]!);
      if (pw.length >= 4) out.push(pw, m[1]!);
    }
  }
  return [...new Set(out)];
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
