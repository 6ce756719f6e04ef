// The terminal printer's writer for a stdout that is a regular file (src/logs/file-sink.ts):
// bytes land in the order written, whatever their sizes and however the writes interleave with
// the thread pool's, and flushSync (exit paths) leaves nothing behind. A real file each time.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { FileSink } from '../src/logs/file-sink.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): { file: string; fd: number } {
  const dir = mkdtempSync(join(tmpdir(), 'bksup-sink-'));
  dirs.push(dir);
  const file = join(dir, 'out');
  return { file, fd: openSync(file, 'w') };
}

describe('FileSink', () => {
  it('writes everything in order across many flushes, the caller reusing its buffer at once', async () => {
    const { file, fd } = tempFile();
    const errors: unknown[] = [];
    const sink = new FileSink(fd, (e) => errors.push(e));
    const scratch = Buffer.alloc(300_000);
    let want = '';
    for (let i = 0; i < 400; i++) {
      // Sizes below and above the 256 KiB flush threshold, and strings between them.
      const size = (i * 7919) % 300_000;
      scratch.fill(String.fromCharCode(97 + (i % 26)), 0, size);
      sink.write(scratch.subarray(0, size));
      want += String.fromCharCode(97 + (i % 26)).repeat(size);
      if (i % 3 === 0) {
        sink.write(`line ${i}\n`);
        want += `line ${i}\n`;
      }
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await sink.flush();
    closeSync(fd);
    expect(errors).toEqual([]);
    expect(readFileSync(file, 'latin1') === want).toBe(true);
  });

  it('flushSync writes what is pending before returning', () => {
    const { file, fd } = tempFile();
    const sink = new FileSink(fd, () => {});
    sink.write('first\n');
    sink.write(Buffer.from('second\n'));
    sink.flushSync();
    expect(readFileSync(file, 'utf8')).toBe('first\nsecond\n');
    closeSync(fd);
  });

  it('reports a failing descriptor once and drops later writes', async () => {
    const { file, fd: w } = tempFile();
    closeSync(w);
    // Open for reading only: every write fails (EBADF), and the descriptor stays ours.
    const fd = openSync(file, 'r');
    const errors: unknown[] = [];
    const sink = new FileSink(fd, (e) => errors.push(e));
    sink.write('x\n');
    await sink.flush();
    sink.write('y\n');
    sink.flushSync();
    expect(errors).toHaveLength(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('EBADF');
    closeSync(fd);
  });

  it('is chosen only for regular files', () => {
    const { fd } = tempFile();
    expect(FileSink.suits(fd)).toBe(true);
    closeSync(fd);
    const devNull = openSync('/dev/null', 'w');
    expect(FileSink.suits(devNull)).toBe(false);
    closeSync(devNull);
  });
});
