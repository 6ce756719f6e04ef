// The config-loader process of the compiled CLI (see importInChild in load.ts): imports one
// config file with tsx, evaluates it, checks and resolves it (zod lives here, not in the
// daemon) and sends the result to its parent by structured clone, then exits, taking tsx's
// loader thread and esbuild service with it.
//   node dist/config-child.js <file> <shown name> <cwd>   (forked with serialization: 'advanced')

import { type ConfigResult, importConfigValue } from './load.ts';
import { validateImported } from './validate.ts';

const [file, shown, cwd] = process.argv.slice(2) as [string, string, string];
const imported = await importConfigValue(file, shown);
const result: ConfigResult = imported.ok ? { ...validateImported(imported.value, { file, cwd, env: process.env }), sources: imported.sources } : imported;
const send = (r: ConfigResult): Promise<void> => new Promise((resolve, reject) => process.send!(r, undefined, {}, (err) => (err ? reject(err) : resolve())));
try {
  await send(result);
} catch (err) {
  await send({
    ok: false,
    errors: [`${shown}: the config holds a value that cannot be passed on (${err instanceof Error ? err.message : String(err)}): use plain data (objects, arrays, strings, numbers, RegExp)`],
  });
}
process.exit(0);
