import { describe, expect, test } from 'vitest';
import { parseDotenv } from '../src/config/dotenv.ts';
import { formatDuration, parseDuration } from '../src/config/duration.ts';
import { closest, editDistance, formatPath } from '../src/config/errors.ts';
import { formatSize, parseSize } from '../src/config/size.ts';

describe('parseDuration', () => {
  test.each([
    ['100ms', 100],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['0s', 0],
    [' 2m ', 120_000],
    ['10 s', 10_000],
    [250, 250],
    [0, 0],
    [12.4, 12],
  ])('%j → %d ms', (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, ms });
  });

  test.each([['10 sec'], ['10'], ['s'], ['1d'], ['1m30s'], ['abc'], [''], ['-5s']])('rejects %j with the hint', (input) => {
    const r = parseDuration(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toContain(`invalid duration ${JSON.stringify(input)}`);
      expect(r.error).toContain("use e.g. '100ms', '10s', '5m' or a number of milliseconds");
    }
  });

  test('rejects negative and non-finite numbers and other types', () => {
    expect(parseDuration(-1)).toMatchObject({ ok: false, error: expect.stringContaining('must not be negative') });
    expect(parseDuration(Infinity).ok).toBe(false);
    expect(parseDuration(NaN).ok).toBe(false);
    expect(parseDuration({})).toMatchObject({ ok: false, error: expect.stringContaining('got an object') });
  });

  test('formatDuration gives a form parseDuration reads back', () => {
    expect(formatDuration(0)).toBe('0ms');
    expect(formatDuration(100)).toBe('100ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(10_000)).toBe('10s');
    expect(formatDuration(300_000)).toBe('5m');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(3_723_000)).toBe('1h2m3s');
    for (const ms of [0, 100, 1500, 10_000, 300_000, 3_600_000]) {
      expect(parseDuration(formatDuration(ms))).toEqual({ ok: true, ms });
    }
  });
});

describe('parseSize', () => {
  test.each([
    ['10MB', 10 * 1024 * 1024],
    ['512KB', 512 * 1024],
    ['1GB', 1024 ** 3],
    ['1.5MB', 1.5 * 1024 * 1024],
    ['100B', 100],
    ['100', 100],
    ['10mb', 10 * 1024 * 1024],
    ['64KiB', 64 * 1024],
    [4096, 4096],
  ])('%j → %d bytes', (input, bytes) => {
    expect(parseSize(input)).toEqual({ ok: true, bytes });
  });

  test.each([['10 MiBs'], ['ten MB'], ['10TB'], [''], [-1], ['-1MB'], [null]])('rejects %j', (input) => {
    const r = parseSize(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain("use e.g. '512KB', '10MB', '1GB' or a number of bytes");
  });

  test('formatSize', () => {
    expect(formatSize(100)).toBe('100B');
    expect(formatSize(10 * 1024 * 1024)).toBe('10MB');
    expect(formatSize(1536)).toBe('1.5KB');
  });
});

describe('parseDotenv', () => {
  test('KEY=VALUE, export prefix, comments, quotes, multi-line values', () => {
    const text = [
      '\uFEFF# a comment',
      '',
      'A=1',
      'export B = two words  ',
      'C="quoted # not a comment"',
      "D='single $NOT_EXPANDED \\n'",
      'E="line1\\nline2\\t\\"q\\""',
      'F=value # trailing comment',
      'G=',
      'H="multi',
      'line"',
      'I=a#b',
      'J=postgres://u:p@h/db?x=1',
      '  K  =  spaced  ',
      'L=`back tick`',
    ].join('\r\n');
    expect(parseDotenv(text)).toEqual({
      ok: true,
      vars: {
        A: '1',
        B: 'two words',
        C: 'quoted # not a comment',
        D: 'single $NOT_EXPANDED \\n',
        E: 'line1\nline2\t"q"',
        F: 'value',
        G: '',
        H: 'multi\nline',
        I: 'a#b',
        J: 'postgres://u:p@h/db?x=1',
        K: 'spaced',
        L: 'back tick',
      },
    });
  });

  test('later assignments win', () => {
    expect(parseDotenv('A=1\nA=2')).toEqual({ ok: true, vars: { A: '2' } });
  });

  test('errors name the line, never the value', () => {
    const r = parseDotenv('A=1\nthis line has no equals\n1BAD=x\nOK="s3cret-unterminated');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([
      'line 2: expected KEY=VALUE',
      expect.stringContaining('line 3: invalid variable name "1BAD"'),
      'line 4: unterminated " quote in the value of OK',
    ]);
    expect(r.errors.join('\n')).not.toContain('s3cret');
  });

  test('text after a closing quote is an error', () => {
    expect(parseDotenv('A="x" y')).toEqual({ ok: false, errors: ['line 1: unexpected text after the closing quote of A'] });
    expect(parseDotenv('A="x" # ok')).toEqual({ ok: true, vars: { A: 'x' } });
  });
});

describe('error helpers', () => {
  test('formatPath quotes what is not a plain identifier', () => {
    expect(formatPath(['units', 'server', 'dependsOn', 'nats'])).toBe('units.server.dependsOn.nats');
    expect(formatPath(['units', 'db-init', 'once'])).toBe('units.db-init.once');
    expect(formatPath(['units', 'a/b'])).toBe('units["a/b"]');
    expect(formatPath(['verify', 0, 'url'])).toBe('verify[0].url');
  });

  test('closest suggests only near misses', () => {
    expect(editDistance('comand', 'command')).toBe(1);
    expect(editDistance('alwyas', 'always')).toBe(1);
    expect(closest('comand', ['command', 'cwd', 'env'])).toBe('command');
    expect(closest('ENV', ['command', 'env'])).toBe('env');
    expect(closest('xyz', ['command', 'cwd'])).toBeUndefined();
  });
});
