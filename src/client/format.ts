// Terminal presentation for the CLI client: colours (only when asked, i.e. on a TTY), unit
// prefixes, durations and plain-text tables.

import type { Writable } from 'node:stream';
import type { UnitStateName } from '../events.ts';

export interface ClientIO {
  out: Writable;
  /** Notes and errors (default: `out`). */
  err?: Writable;
  /** Colour output (default: whether `out` is a TTY and NO_COLOR is not set). */
  color?: boolean;
  /** The clock, for uptimes (default Date.now). */
  now?: () => number;
}

export function useColor(io: ClientIO): boolean {
  if (io.color !== undefined) return io.color;
  return (io.out as Writable & { isTTY?: boolean }).isTTY === true && !process.env.NO_COLOR;
}

export function errStream(io: ClientIO): Writable {
  return io.err ?? io.out;
}

export type Paint = (code: string, text: string) => string;

export function painter(color: boolean): Paint {
  return color ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_code, text) => text;
}

export const STYLE = { dim: '2', bold: '1', red: '31', green: '32', yellow: '33', blue: '34', magenta: '35', cyan: '36' } as const;

const UNIT_COLORS = ['36', '32', '33', '35', '34', '96', '92', '93', '95', '94'];

/** A unit keeps its colour across runs and reconnects: it is derived from the name. */
export function unitColor(unit: string): string {
  let h = 0;
  for (let i = 0; i < unit.length; i++) h = (h * 31 + unit.charCodeAt(i)) >>> 0;
  return UNIT_COLORS[h % UNIT_COLORS.length] as string;
}

export function stateColor(state: UnitStateName): string {
  switch (state) {
    case 'healthy':
    case 'completed':
      return STYLE.green;
    case 'running':
    case 'starting':
      return STYLE.cyan;
    case 'backoff':
    case 'stopping':
      return STYLE.yellow;
    case 'unhealthy':
    case 'failed':
      return STYLE.red;
    case 'pending':
    case 'stopped':
    case 'skipped':
    case 'disabled':
      return STYLE.dim;
  }
}

/** 3725000 → `1h2m`, 65000 → `1m5s`, 900 → `0s`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

export interface Cell {
  text: string;
  style?: string;
}

/** Columns padded to the widest plain text; colour applied after padding so widths stay right. */
export function renderTable(header: string[], rows: Cell[][], paint: Paint): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.text.length ?? 0)));
  const line = (cells: Cell[]): string =>
    cells
      .map((c, i) => {
        const last = i === cells.length - 1;
        const padded = last ? c.text : c.text.padEnd(widths[i] ?? 0);
        return c.style ? paint(c.style, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  return [line(header.map((h) => ({ text: h, style: STYLE.bold }))), ...rows.map(line)].join('\n') + '\n';
}
