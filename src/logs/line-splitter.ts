// Turns the byte chunks of one child pipe into whole text lines. One splitter per stream
// (stdout and stderr each have their own partial tail). This is the first step of the hot
// log path (see src/events.ts).
//
// Two ways in. `push` returns strings (per chunk one UTF-8 decode and one native split; per
// line only a length check and a trailing-'\r' check). `pushRaw`, what a unit's pipe uses,
// returns the chunk's whole lines as the bytes they came in (RawLines) whenever those bytes
// are exactly the UTF-8 of the lines `push` would give: valid UTF-8, no line ending in '\r',
// none longer than the maximum. The files, the ring and the terminal then format bytes, and
// no string is made unless a consumer asks for `lines`. Any other chunk goes through `push`,
// so both give the same lines for the same bytes.

import { isUtf8 } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';

/** Longest line kept whole, in UTF-16 code units (≈ bytes for ASCII output). */
export const DEFAULT_MAX_LINE_LENGTH = 64 * 1024;

const CR = 13;
const NL = 10;
const EMPTY = Buffer.alloc(0);
const NO_LINES: string[] = [];

/**
 * Whole lines as bytes: each line's UTF-8 followed by '\n', in two pieces: `head`, the line
 * completed from the previous chunk's tail (empty if none), then `body`, a view of this
 * chunk's lines (no copy of the chunk). `ends[i]` is where line i ends (after its '\n') in
 * head + body: found once by the splitter, so formatting needs no search. The strings are made
 * on first use of `lines` (a WebSocket follower, a log health check), not before.
 */
export class RawLines {
  #lines: string[] | undefined;
  constructor(
    readonly head: Buffer,
    readonly body: Buffer,
    readonly ends: Int32Array,
  ) {}

  /** For tests and tools: the lines of `head` + `body` (whole lines, none to be altered). */
  static of(head: Buffer, body: Buffer): RawLines {
    const n = scanLines(head, Infinity, 0, 0);
    const all = n < 0 ? -1 : scanLines(body, Infinity, n, head.length);
    if (all < 0 || !isUtf8(head) || !isUtf8(body)) throw new Error('RawLines.of: not plain whole lines');
    return new RawLines(head, body, scratch.slice(0, all));
  }

  get count(): number {
    return this.ends.length;
  }

  /** Bytes in all (each line's '\n' included). */
  get length(): number {
    return this.head.length + this.body.length;
  }

  /** Copies all the bytes to `out` at `at`; returns the end. */
  copyTo(out: Uint8Array, at: number): number {
    out.set(this.head, at);
    out.set(this.body, at + this.head.length);
    return at + this.length;
  }

  /** Whether `text` (which holds no '\n') occurs in a line. */
  includes(text: string): boolean {
    return this.head.includes(text) || this.body.includes(text);
  }

  get lines(): string[] {
    return (this.#lines ??= [...linesOf(this.head), ...linesOf(this.body)]);
  }

  /** The last `n` lines (fewer if there are not as many), decoding only those. */
  lastLines(n: number): string[] {
    const inBody = this.count - (this.head.length > 0 ? 1 : 0);
    if (this.#lines !== undefined || n >= inBody) return this.lines.slice(-n);
    const h = this.head.length;
    const from = (this.ends[this.count - n - 1] as number) - h;
    return this.body.toString('utf8', from, this.body.length - 1).split('\n');
  }
}

function linesOf(bytes: Buffer): string[] {
  return bytes.length === 0 ? [] : bytes.toString('utf8', 0, bytes.length - 1).split('\n');
}

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

  /** pushRaw's partial last line, as bytes (at most #maxLineLength of them). */
  #tailBytes: Buffer = EMPTY;
  /**
   * pushRaw hands chunks to `push` while the string side holds something (a partial line or a
   * partial character): from a chunk whose last line has no '\n' yet and did not fit the byte
   * tail, until a chunk ends with '\n' (then both are empty again).
   */
  #strings = false;

  /**
   * The whole lines completed by this chunk: as bytes when they can be (see RawLines), else
   * as strings exactly as `push` gives them. Use either this or `push` on one splitter.
   */
  pushRaw(chunk: Buffer): RawLines | string[] {
    if (this.#strings) {
      if (chunk.length > 0 && chunk[chunk.length - 1] === NL) this.#strings = false;
      return this.push(chunk);
    }
    const max = this.#maxLineLength;
    const held = this.#tailBytes;
    const nl = chunk.lastIndexOf(NL);
    const rest = chunk.length - nl - 1;
    if (rest > max || (nl < 0 && held.length + rest > max)) {
      // The partial line may be cut into pieces: that is the string side's job, from here on.
      this.#tailBytes = EMPTY;
      this.#strings = true;
      return this.push(held.length > 0 ? Buffer.concat([held, chunk]) : chunk);
    }
    if (nl < 0) {
      this.#tailBytes = Buffer.concat([held, chunk]);
      return NO_LINES;
    }
    // The line completed from the held tail is the only one copied; the rest stays a view.
    let head = EMPTY;
    let body = chunk.subarray(0, nl + 1);
    if (held.length > 0) {
      const first = chunk.indexOf(NL) + 1;
      head = Buffer.concat([held, chunk.subarray(0, first)]);
      body = chunk.subarray(first, nl + 1);
    }
    // A copy: a view would keep the whole chunk alive for the few bytes of its last line.
    this.#tailBytes = rest > 0 ? Buffer.from(chunk.subarray(nl + 1)) : EMPTY;
    const inHead = scanLines(head, max, 0, 0);
    const all = inHead < 0 ? -1 : scanLines(body, max, inHead, head.length);
    // Each piece is whole lines: each is valid UTF-8 alone exactly when both are together.
    if (all >= 0 && isUtf8(head) && isUtf8(body)) return new RawLines(head, body, scratch.slice(0, all));
    // The string side is empty here and this ends with '\n': it is empty again afterwards.
    return this.push(head.length > 0 ? Buffer.concat([head, body]) : body);
  }

  /** The whole lines completed by this chunk, without their '\n' (or '\r\n'). */
  push(chunk: Buffer): string[] {
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
    // A trailing '\r' stays in the tail: its '\n' may come with the next chunk.
    this.#tail = detach(this.#cutTail(decoded.slice(nl + 1), out));
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
    const held = this.#tailBytes;
    this.#tailBytes = EMPTY;
    this.#strings = false;
    const last = held.length > 0 ? this.push(held) : NO_LINES;
    // The decoder can only add U+FFFD for a truncated character here, never a '\n'.
    const rest = this.#tail + this.#decoder.end();
    this.#tail = '';
    if (rest.length === 0) return last === NO_LINES ? [] : last;
    const tail = this.#normalise([rest]);
    return last.length === 0 ? tail : [...last, ...tail];
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

/** Line ends found by scanLines; RawLines takes a copy of its part. */
let scratch = new Int32Array(1024);

/**
 * Stores the end (after its '\n', plus `base`) of every line of `block` (empty, or ending with
 * '\n') in `scratch` from index `k`; returns the index after the last, or -1 when a line ends
 * in '\r' or is longer than `max` bytes: those need `push`'s string rules. One native search a line.
 */
function scanLines(block: Buffer, max: number, k: number, base: number): number {
  let start = 0;
  for (let e = block.indexOf(NL); e !== -1; e = block.indexOf(NL, start)) {
    if (e - start > max || (e > start && block[e - 1] === CR)) return -1;
    if (k === scratch.length) {
      const grown = new Int32Array(scratch.length * 2);
      grown.set(scratch);
      scratch = grown;
    }
    start = e + 1;
    scratch[k++] = base + start;
  }
  return k;
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
