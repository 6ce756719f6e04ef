// The local files a config imports (itself included), for the memo's dependencies: esbuild
// follows the import graph as tsx would (packages left out: they change by installs). Used only
// by the config-loader child, when a config is evaluated anyway.

import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

type Esbuild = typeof import('esbuild');

function loadEsbuild(): Esbuild {
  const require = createRequire(import.meta.url);
  try {
    return require('esbuild') as Esbuild;
  } catch {
    // Not hoisted: the copy tsx depends on.
    return createRequire(join(dirname(require.resolve('tsx/package.json')), 'package.json'))('esbuild') as Esbuild;
  }
}

/** Absolute paths of every local module `file` imports, or undefined when they cannot be told. */
export async function configModules(file: string): Promise<string[] | undefined> {
  let esbuild: Esbuild;
  try {
    esbuild = loadEsbuild();
  } catch {
    return undefined;
  }
  const base = dirname(file);
  try {
    const r = await esbuild.build({
      entryPoints: [file],
      absWorkingDir: base,
      bundle: true,
      write: false,
      metafile: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      logLevel: 'silent',
      tsconfigRaw: '{}',
    });
    return Object.keys(r.metafile.inputs).map((p) => resolve(base, p));
  } catch {
    return undefined;
  } finally {
    await esbuild.stop();
  }
}
