// Encoding log text into the byte buffers of the files and the ring (the hot path, src/events.ts).

/**
 * The encoding to write `text` with, knowing its UTF-8 length: when every character is one
 * byte (ASCII, most log output) 'latin1' gives the same bytes by a plain copy, where the UTF-8
 * encoder examines each character (a fifth of the daemon's CPU under a noisy child).
 */
export function asciiOr(text: string, utf8Bytes: number): BufferEncoding {
  return utf8Bytes === text.length ? 'latin1' : 'utf8';
}
