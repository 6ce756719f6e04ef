// The config-loader process of the compiled CLI (see importInChild in load.ts): imports one
// config file with tsx, evaluates it, checks and resolves it (zod lives here, not in the
// daemon) and sends the result to its parent by structured clone, then exits, taking tsx's
// loader thread and esbuild service with it. With the result go what the evaluation and the
// resolution read (src/config/deps.ts), so that the parent can keep it in the memo.
//   node dist/config-child.js <file> <shown name> <cwd>   (forked with serialization: 'advanced')

import { fileSig, startRecording, type Dep } from './deps.ts';
import { configModules } from './imports.ts';
import { type ChildAnswer, type ConfigResult, importConfigValue } from './load.ts';
import { validateImported } from './validate.ts';

const [file, shown, cwd] = process.argv.slice(2) as [string, string, string];
const evaluation = startRecording({ ignoreOwnScript: true });
const imported = await importConfigValue(file, shown);
const read = evaluation.stop();
const modules = imported.ok ? await configModules(file) : undefined;
const seen = new Set(read.map((d) => (d.kind === 'file' ? d.path : '')));
const deps: Dep[] = [...read, ...(modules ?? []).filter((m) => !seen.has(m)).map((path): Dep => ({ kind: 'file', path, sig: fileSig(path) }))];
let answer: ChildAnswer;
if (!imported.ok || !modules) {
  // No memo without the list of modules: the result is passed on, not kept.
  answer = { result: imported.ok ? { ...validateImported(imported.value, { file, cwd, env: process.env }), sources: imported.sources } : imported };
} else {
  // The environment as a whole and the directory are part of the memo's key for the resolved
  // config (every unit inherits the environment): only the files read here are recorded.
  const resolution = startRecording({ ignoreOwnScript: false });
  const result: ConfigResult = { ...validateImported(imported.value, { file, cwd, env: process.env }), sources: imported.sources };
  const resolvedDeps = resolution.stop().filter((d: Dep) => d.kind !== 'env' && d.kind !== 'env*' && d.kind !== 'cwd');
  answer = { result, deps, resolvedDeps };
}
const send = (a: ChildAnswer): Promise<void> => new Promise((resolve, reject) => process.send!(a, undefined, {}, (err) => (err ? reject(err) : resolve())));
try {
  await send(answer);
} catch (err) {
  await send({
    result: {
      ok: false,
      errors: [`${shown}: the config holds a value that cannot be passed on (${err instanceof Error ? err.message : String(err)}): use plain data (objects, arrays, strings, numbers, RegExp)`],
    },
  });
}
process.exit(0);
