// The terminal of a `tty: true` unit as `bksup attach` sees it: one per unit, living across its
// runs. Each run's PTY is bound while it lives; at most one client is attached at a time.
//
//   (no run) ── bind(pty) ──► bound ── the run exits ──► (no run) ── bind(next run's pty) …
//   detached ── attach(client) ──► attached ── detach() ──► detached      (independent of runs)
//
// An attached client gets the run's output bytes as they come and its keystrokes go to the run's
// terminal; it stays attached while the unit restarts (output resumes with the next run) and
// while none runs (keystrokes are dropped then). A second client is refused, naming the first
// one's start: two keyboards typing into one pdb prompt interleave keystroke by keystroke.
// On attach the client first gets the last few KiB of output, so a prompt printed before it came
// (`(Pdb) `, a `read`'s question) is on its screen.

import type { PtyChild, TerminalSize } from './pty.ts';

/** What the terminal sends to the attached client. */
export interface TerminalClient {
  output(data: Buffer): void;
}

export interface TerminalSession {
  /** Keystrokes for the current run's terminal (dropped while none runs). */
  input(data: Buffer): void;
  /** The client's window size: applied now (SIGWINCH) and to the next runs. */
  resize(size: TerminalSize): void;
  /** Ends this attachment; the unit keeps running. Idempotent. */
  detach(): void;
}

export type AttachResult = { ok: true; session: TerminalSession } | { ok: false; error: string };

/** Output kept for a client that attaches later: enough for a prompt and the lines above it. */
const REPLAY_BYTES = 8 * 1024;
const DEFAULT_SIZE: TerminalSize = { cols: 120, rows: 40 };

export class UnitTerminal {
  readonly #unit: string;
  /** Records attach and detach in the unit's own log. */
  readonly #note: (text: string) => void;
  #pty: PtyChild | undefined;
  #size: TerminalSize = DEFAULT_SIZE;
  #client: { client: TerminalClient; since: number } | undefined;
  /** Newest output last, at most about REPLAY_BYTES in total. */
  #replay: Buffer[] = [];
  #replayBytes = 0;
  /** The replay lost its beginning: it starts in the middle of a line (or escape sequence). */
  #replayCut = false;

  constructor(unit: string, note: (text: string) => void = () => {}) {
    this.#unit = unit;
    this.#note = note;
  }

  /** The size a new run's terminal starts with: the last client's window. */
  get size(): TerminalSize {
    return this.#size;
  }

  get attached(): boolean {
    return this.#client !== undefined;
  }

  /** A new run's terminal: its output goes to the client (if any) until it exits. */
  bind(pty: PtyChild): void {
    this.#pty = pty;
    pty.output.on('data', (chunk: Buffer) => {
      this.#remember(chunk);
      this.#client?.client.output(chunk);
    });
    void pty.exited.then(() => {
      if (this.#pty === pty) this.#pty = undefined;
    });
  }

  /** Why a client cannot attach now, or undefined when it can. */
  busyReason(): string | undefined {
    if (!this.#client) return undefined;
    const since = new Date(this.#client.since).toTimeString().slice(0, 8);
    return `${this.#unit} already has a terminal attached (since ${since}): one keyboard at a time; detach that one first (Ctrl-])`;
  }

  /** Attaches `client` (refused while another is) and sends it the kept output first. */
  attach(client: TerminalClient, size: TerminalSize | undefined): AttachResult {
    const busy = this.busyReason();
    if (busy !== undefined) return { ok: false, error: busy };
    const entry = { client, since: Date.now() };
    this.#client = entry;
    if (size) this.#resize(size);
    this.#note(`terminal attached (${this.#size.cols}x${this.#size.rows}); keystrokes now come from bksup attach`);
    const replay = this.#replayText();
    if (replay.length) client.output(replay);
    const current = (): boolean => this.#client === entry;
    return {
      ok: true,
      session: {
        input: (data) => {
          if (current()) this.#pty?.write(data);
        },
        resize: (s) => {
          if (current()) this.#resize(s);
        },
        detach: () => {
          if (!current()) return;
          this.#client = undefined;
          this.#note('terminal detached; the unit keeps running');
        },
      },
    };
  }

  #resize(size: TerminalSize): void {
    this.#size = size;
    this.#pty?.resize(size);
  }

  #remember(chunk: Buffer): void {
    this.#replay.push(chunk);
    this.#replayBytes += chunk.length;
    while (this.#replay.length > 1 && this.#replayBytes - this.#replay[0]!.length >= REPLAY_BYTES) {
      this.#replayBytes -= this.#replay.shift()!.length;
      this.#replayCut = true;
    }
  }

  /** The kept output; when its beginning was cut, from the first whole line on. */
  #replayText(): Buffer {
    let all = Buffer.concat(this.#replay);
    if (all.length > REPLAY_BYTES) {
      all = all.subarray(all.length - REPLAY_BYTES);
      this.#replayCut = true;
    }
    if (this.#replayCut) {
      const nl = all.indexOf(10);
      if (nl >= 0) all = all.subarray(nl + 1);
    }
    return all;
  }
}
