// Turns the byte chunks of one child pipe into whole text lines. One splitter per stream
// (stdout and stderr each have their own partial tail). This is the first step of the hot
// log path (see src/events.ts): per chunk it does one UTF-8 decode and one native split;
// per line only a length check and a trailing-'\r' check.

import { StringDecoder } from 'node:string_decoder';

/** Longest line kept whole, in UTF-16 code units (≈ bytes for ASCII output). */
export const DEFAULT_MAX_LINE_LENGTH = 64 * 1024;

const CR = 13;

export class LineSplitter {
  // StringDecoder holds back the bytes of a multi-byte character split across chunks.
  readonly #decoder = new StringDecoder('utf8');
  readonly #maxLineLength: number;
  /** Text after the last '\n' seen so far; never longer than #maxLineLength. */
  #tail = '';

  /**
   * Lines longer than `maxLineLength` are cut into pieces of at most that length, each piece
   * becoming a line of its own. A child that writes without ever writing a newline therefore
   * costs at most one piece of memory here, not the whole output.
   */
  constructor(maxLineLength: number = DEFAULT_MAX_LINE_LENGTH) {
    if (!Number.isInteger(maxLineLength) || maxLineLength < 2) {
      throw new Error(`LineSplitter: maxLineLength must be an integer ≥ 2, got ${maxLineLength}`);
    }
    this.#maxLineLength = maxLineLength;
  }

  /**
   * After push(): the returned lines joined by '\n', as two strings whose concatenation it is
   * (the tail carried over from earlier chunks, then a view of this chunk's text), or undefined
   * when the lines were altered (CRLF, over-long lines). Consumers that want the text of the
   * whole batch (the ring) write the two pieces instead of joining hundreds of lines again.
   */
  joined: readonly [string, string] | undefined = undefined;

  /** The whole lines completed by this chunk, without their '\n' (or '\r\n'). */
  push(chunk: Buffer): string[] {
    this.joined = undefined;
    const decoded = this.#decoder.write(chunk);
    if (decoded.length === 0) return [];
    const max = this.#maxLineLength;
    const nl = decoded.lastIndexOf('\n');
    if (nl < 0) {
      // No line ends here: all of it extends the tail (cut if it grows past the maximum).
      const out: string[] = [];
      this.#tail = detach(this.#cutTail(this.#tail + decoded, out));
      return out;
    }
    // Split this chunk's text alone and put the tail in front of its first line: prefixing
    // the tail to the whole chunk instead would copy all 64 KiB of it once more.
    const head = this.#tail;
    const body = decoded.slice(0, nl);
    const lines = body.split('\n');
    if (head.length > 0) lines[0] = head + (lines[0] as string);
    let needsFix = false;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      const len = line.length;
      if (len > max || (len > 0 && line.charCodeAt(len - 1) === CR)) {
        needsFix = true;
        break;
      }
    }
    const out = needsFix ? this.#normalise(lines) : lines;
    const before = out.length;
    // A trailing '\r' stays in the tail: its '\n' may come with the next chunk.
    this.#tail = detach(this.#cutTail(decoded.slice(nl + 1), out));
    if (!needsFix && out.length === before) this.joined = [head, body];
    return out;
  }

  /** Moves pieces of `tail` longer than the maximum into `out`; returns what is left. */
  #cutTail(tail: string, out: string[]): string {
    const max = this.#maxLineLength;
    while (tail.length > max) {
      const cut = safeCut(tail, max);
      out.push(tail.slice(0, cut));
      tail = tail.slice(cut);
    }
    return tail;
  }

  /** Whatever is left after the stream closed: a final line without '\n' is kept. */
  end(): string[] {
    this.joined = undefined;
    // The decoder can only add U+FFFD for a truncated character here, never a '\n'.
    const rest = this.#tail + this.#decoder.end();
    this.#tail = '';
    return rest.length === 0 ? [] : this.#normalise([rest]);
  }

  /** Slow path, only for chunks that contain CRLF or over-long lines. */
  #normalise(lines: string[]): string[] {
    const max = this.#maxLineLength;
    const out: string[] = [];
    for (let line of lines) {
      if (line.length > 0 && line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
      while (line.length > max) {
        const cut = safeCut(line, max);
        out.push(line.slice(0, cut));
        line = line.slice(cut);
      }
      out.push(line);
    }
    return out;
  }
}

/** A cut position ≤ `at` that does not separate the two halves of a surrogate pair. */
function safeCut(text: string, at: number): number {
  const prev = text.charCodeAt(at - 1);
  return prev >= 0xd800 && prev <= 0xdbff ? at - 1 : at;
}

/**
 * `s`, as a string that does not keep alive the one it was cut from. V8 represents a substring
 * of 13 or more characters as a view into its parent, so a line kept beyond its chunk (the
 * unterminated tail here, a unit's last lines for failure reasons) would hold the whole 64 KiB
 * chunk: it survives young-generation GCs with it, is copied each time and ends up in the old
 * generation. Under a noisy child that was a third of the daemon's GC time. Copying one line is
 * cheap; concatenating forces a flat copy, the slice then points into that copy only.
 */
export function detach(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1);
}
