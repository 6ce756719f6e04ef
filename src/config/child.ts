// The config-loader process of the compiled CLI (see importInChild in load.ts): imports one
// config file with tsx, evaluates it and sends the value to its parent by structured clone,
// then exits, taking tsx's loader thread and esbuild service with it.
//   node dist/config-child.js <file> <shown name>      (forked with serialization: 'advanced')

import { importConfigValue, type ImportedConfig } from './load.ts';

const [file, shown] = process.argv.slice(2) as [string, string];
const result = await importConfigValue(file, shown);
const send = (r: ImportedConfig): Promise<void> => new Promise((resolve, reject) => process.send!(r, undefined, {}, (err) => (err ? reject(err) : resolve())));
try {
  await send(result);
} catch (err) {
  await send({
    ok: false,
    errors: [`${shown}: the config holds a value that cannot be passed on (${err instanceof Error ? err.message : String(err)}): use plain data (objects, arrays, strings, numbers, RegExp)`],
  });
}
process.exit(0);
