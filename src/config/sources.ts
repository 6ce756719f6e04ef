// The files a config is made of: the config file and, transitively, the local files it imports
// (relative specifiers only; packages and bk-supervisor itself are not the user's config).
// Read from the sources with a static scan: tsx's onImport reports only the entry file.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+)\1/g;
const EXTENSIONS = ['', '.ts', '.mts', '.js', '.mjs', '.json', '/index.ts', '/index.js'];

function resolveLocal(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  // `./x.js` written for a `./x.ts` source (TypeScript's ESM convention).
  const candidates = [...EXTENSIONS.map((e) => base + e), base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/** `file` and every local file it imports, directly or not, except those under `exclude`. */
export function configSources(file: string, exclude: string): string[] {
  const seen = new Set<string>();
  const visit = (f: string): void => {
    if (seen.has(f) || f.startsWith(exclude) || f.includes('/node_modules/')) return;
    seen.add(f);
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      return;
    }
    for (const m of text.matchAll(SPECIFIER)) {
      const target = resolveLocal(f, m[2]!);
      if (target) visit(target);
    }
  };
  visit(file);
  return [...seen];
}
