// Masking, the functions every user-visible path calls (unit logs, status, events, errors):
// each secret shape the README promises to hide, and the text around it kept intact so logs stay
// readable. The production wiring is tested in core-supervisor and logs-supervisor; these cases
// pin the masking rules themselves (`npm run mutation redact` shows each one matters).
import { describe, expect, it } from 'vitest';
import { isSecretName, redactEnv, redactText, redactUrl, secretValues, urlPasswords } from '../src/util/redact.ts';

describe('redactUrl', () => {
  it('masks the password of any scheme and keeps user, host, port and path', () => {
    expect(redactUrl('postgres://bklite:s3cret@127.0.0.1:15432/bklite')).toBe('postgres://bklite:***@127.0.0.1:15432/bklite');
    expect(redactUrl('redis://:r3dis-pw@localhost:16380/0')).toBe('redis://:***@localhost:16380/0');
    expect(redactUrl('postgresql+psycopg://u:p%40ss@h/db')).toBe('postgresql+psycopg://u:***@h/db');
    expect(redactUrl('DSN=Postgres://U:PW@h/db and nats://a:b@n:4222')).toBe('DSN=Postgres://U:***@h/db and nats://a:***@n:4222');
  });

  it('leaves URLs without a password, and plain text, untouched', () => {
    for (const s of ['http://127.0.0.1:3011/login', 'nats://user@host:4222', 'postgres://host/db', 'ratio 3:4 at 10:30', 'mail me@host']) {
      expect(redactUrl(s)).toBe(s);
    }
  });
});

describe('secret names', () => {
  it('names with PASS, SECRET, TOKEN, KEY or CREDENTIAL, any case, are secret; others are not', () => {
    for (const n of ['POSTGRES_PASSWORD', 'db_pass', 'DJANGO_SECRET', 'secret_key', 'GITHUB_TOKEN', 'API_KEY', 'Aws_Credentials']) expect(isSecretName(n), n).toBe(true);
    for (const n of ['PATH', 'HOME', 'POSTGRES_PORT', 'NATS_NAMESPACE', 'USER']) expect(isSecretName(n), n).toBe(false);
  });

  it('redactEnv masks secret-named values whole and URL passwords in the others', () => {
    expect(redactEnv({ POSTGRES_PASSWORD: 'x', DATABASE_URL: 'postgres://u:pw@h/db', PORT: '3011' })).toEqual({
      POSTGRES_PASSWORD: '***',
      DATABASE_URL: 'postgres://u:***@h/db',
      PORT: '3011',
    });
  });

  it('secretValues collects the values of secret-named variables of 4 characters or more', () => {
    expect(secretValues({ REDIS_PASSWORD: 'bklite_redis_pass', API_TOKEN: 'abc', HOME: '/root', SECRET_KEY: 'abcd' })).toEqual(['bklite_redis_pass', 'abcd']);
  });
});

describe('redactText', () => {
  it('masks key=value and key: value pairs named like secrets, quoted or not, and keeps the rest', () => {
    expect(redactText('connect password=hunter22 host=db')).toBe('connect password=*** host=db');
    expect(redactText('PGPASSWORD="a b c" psql')).toBe('PGPASSWORD=*** psql');
    expect(redactText("token: 'xyz' ok")).toBe('token: *** ok');
    expect(redactText('api_key=k1,next=1; client_secret = s2&x=3')).toBe('api_key=***,next=1; client_secret = ***&x=3');
    expect(redactText("password='two words' next")).toBe('password=*** next');
    expect(redactText('db_pass=hunter2 apikey=k9 SECRET_KEY=dj4ngo token_id=t1')).toBe('db_pass=*** apikey=*** SECRET_KEY=*** token_id=***');
    expect(redactText('user=admin db: bklite')).toBe('user=admin db: bklite');
  });

  it('masks bearer tokens of 8 characters or more, and URL passwords inside text', () => {
    expect(redactText('Authorization: Bearer abcDEF12.-_~+/=x')).toBe('Authorization: Bearer ***');
    expect(redactText('Authorization: bearer   abcDEF1234')).toBe('Authorization: bearer   ***');
    expect(redactText('bearer short')).toBe('bearer short');
    expect(redactText('FATAL: could not connect to postgres://u:pw@h/db')).toBe('FATAL: could not connect to postgres://u:***@h/db');
  });

  it('masks every occurrence of the literal secrets given, if 4 characters or more', () => {
    expect(redactText('t=tok1 then tok1 again, abc stays', ['tok1', 'abc'])).toBe('t=*** then *** again, abc stays');
    expect(redactText('line with s3cr3t-value inside', new Set(['s3cr3t-value']))).toBe('line with *** inside');
  });
});

describe('urlPasswords', () => {
  it('finds each URL password, raw and percent-decoded, once, and skips short or missing ones', () => {
    expect(urlPasswords(['postgres://bklite:p%40ssword@h/db', 'redis://:p%40ssword@r:6379', 'nats://a:pw@n', 'http://h/x', 'x'])).toEqual(['p@ssword', 'p%40ssword']);
    expect(urlPasswords(['redis://:r3dis@r:6379', 'nats://nats_user:abcd@n:4222'])).toEqual(['r3dis', 'abcd']);
  });

  it('keeps a password that is not valid percent-encoding as it is', () => {
    expect(urlPasswords(['postgres://u:100%zz@h/db'])).toEqual(['100%zz']);
  });
});
