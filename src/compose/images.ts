// Which image each service runs, read from `compose config` (v1 and v2 both print the file
// resolved — variables interpolated — as canonical YAML: `services:` at column 0, service names
// indented two spaces, their keys four). Only `image:` and `build:` matter here, so this reads
// that shape rather than pulling in a YAML parser.

export interface ServiceImage {
  /** The image name, when the service names one. */
  image: string | undefined;
  /** The service has `build:`: compose builds it, nothing to pull. */
  build: boolean;
}

export function serviceImages(configYaml: string): Map<string, ServiceImage> {
  const out = new Map<string, ServiceImage>();
  let inServices = false;
  let current: ServiceImage | undefined;
  for (const raw of configYaml.split(/\r?\n/)) {
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const indent = raw.length - raw.trimStart().length;
    if (indent === 0) {
      inServices = /^services:\s*$/.test(raw);
      current = undefined;
      continue;
    }
    if (!inServices) continue;
    if (indent === 2) {
      const m = /^ {2}("?)([^":]+)\1:\s*$/.exec(raw);
      current = m ? { image: undefined, build: false } : undefined;
      if (m) out.set(m[2]!, current!);
      continue;
    }
    if (indent !== 4 || !current) continue;
    const image = /^ {4}image:\s*(.+?)\s*$/.exec(raw);
    if (image) current.image = unquote(image[1]!);
    else if (/^ {4}build:/.test(raw)) current.build = true;
  }
  return out;
}

function unquote(v: string): string {
  if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) return v.slice(1, -1);
  return v;
}

/** Pull output repeats progress for every layer; these lines say something to a person. */
export function isPullProgressNoise(line: string): boolean {
  return /^\s*$/.test(line) || /\b(Waiting|Downloading|Extracting|Verifying Checksum|Pulling fs layer)\b.*$/.test(line) && !/\b(Download complete|Pull complete)\b/.test(line);
}
