// A small parser for .env files (dotenv format), so env files need no extra dependency:
//   KEY=value            unquoted: trimmed, ` #` starts a comment
//   export KEY=value     the shell prefix is accepted and ignored
//   KEY="a\nb"           double quotes: \n \r \t \" \\ escapes, may span lines
//   KEY='literal $x'     single (or back) quotes: taken as is, may span lines
//   # comment, blank lines
// No `${VAR}` expansion, like dotenv itself. Errors carry line numbers, never values (they may be secrets).

export type DotenvResult =
  | { ok: true; vars: Record<string, string> }
  | { ok: false; errors: string[] };

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export function parseDotenv(text: string): DotenvResult {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const vars: Record<string, string> = {};
  const errors: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    const body = line.replace(/^export\s+/, '');
    const eq = body.indexOf('=');
    if (eq < 0) {
      errors.push(`line ${lineNo}: expected KEY=VALUE`);
      continue;
    }
    const key = body.slice(0, eq).trim();
    if (!KEY_RE.test(key)) {
      errors.push(`line ${lineNo}: invalid variable name ${JSON.stringify(key.slice(0, 40))} (use letters, digits and '_')`);
      continue;
    }
    const rest = body.slice(eq + 1).trimStart();
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      // The value may continue on following lines until the matching unescaped quote.
      let buffer = rest.slice(1);
      let end = findClosingQuote(buffer, quote);
      let j = i;
      while (end < 0 && j + 1 < lines.length) {
        j++;
        buffer += `\n${lines[j] as string}`;
        end = findClosingQuote(buffer, quote);
      }
      if (end < 0) {
        errors.push(`line ${lineNo}: unterminated ${quote} quote in the value of ${key}`);
        break;
      }
      const trailing = buffer.slice(end + 1).trim();
      if (trailing !== '' && !trailing.startsWith('#')) {
        errors.push(`line ${j + 1}: unexpected text after the closing quote of ${key}`);
      }
      const raw = buffer.slice(0, end);
      vars[key] = quote === '"' ? unescapeDouble(raw) : raw;
      i = j;
      continue;
    }
    const hash = rest.search(/\s#/);
    vars[key] = (hash >= 0 ? rest.slice(0, hash) : rest).trim();
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, vars };
}

function findClosingQuote(s: string, quote: string): number {
  for (let k = 0; k < s.length; k++) {
    if (quote === '"' && s[k] === '\\') {
      k++;
      continue;
    }
    if (s[k] === quote) return k;
  }
  return -1;
}

function unescapeDouble(s: string): string {
  return s.replace(/\\([nrt"\\$])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c] ?? c);
}
