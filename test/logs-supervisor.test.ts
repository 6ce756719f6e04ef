import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { EventBus } from '../src/events.ts';
import { attachSupervisorLog, closeSupervisorLogger, createSupervisorLogger, supervisorLogPath } from '../src/logs/supervisor-log.ts';
import { waitFor } from './helpers/wait.ts';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bksup-logs-sup-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function readJsonLines(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('supervisor log', () => {
  it('writes every state and verify event as one JSON line, secrets redacted', async () => {
    const dir = path.join(tmp, 'logs'); // created on demand
    const logger = createSupervisorLogger(dir, { secrets: ['s3cr3t-token-value'] });
    const bus = new EventBus();
    const off = attachSupervisorLog(bus, logger);
    bus.publishEvent({ type: 'state', unit: 'server', kind: 'process', state: 'healthy', prev: 'running', ts: 1, pid: 4242 });
    bus.publishEvent({
      type: 'state',
      unit: 'mlflow-db',
      kind: 'task',
      state: 'failed',
      prev: 'running',
      ts: 2,
      exitCode: 1,
      reason: 'cannot connect to postgres://postgres:bklite_dev_pass@127.0.0.1:15432/bklite',
    });
    bus.publishEvent({ type: 'verify', ts: 3, ok: true, results: [{ name: 'login', ok: true, detail: 'token received' }] });
    logger.info({ password: 'hunter2', dsn: 'redis://:bklite_redis_pass@127.0.0.1:16380/0', headers: { authorization: 'Bearer abc' } }, 'probe config');
    logger.info('control token is s3cr3t-token-value, db at postgres://u:pw1234@h/db');
    logger.error(new Error('connect failed: postgres://postgres:bklite_dev_pass@127.0.0.1/bklite'));
    off();
    await closeSupervisorLogger(logger);

    const file = supervisorLogPath(dir);
    const raw = fs.readFileSync(file, 'utf8');
    for (const secret of ['bklite_dev_pass', 'bklite_redis_pass', 'hunter2', 'Bearer abc', 's3cr3t-token-value', 'pw1234']) {
      expect(raw, secret).not.toContain(secret);
    }
    const lines = readJsonLines(file);
    expect(lines.length).toBe(6);
    expect(lines[0]).toMatchObject({ level: 'info', event: 'state', unit: 'server', state: 'healthy', prev: 'running', unitPid: 4242, pid: process.pid, msg: 'server: running → healthy' });
    expect(typeof lines[0]!.time).toBe('string');
    expect(lines[1]).toMatchObject({
      level: 'warn',
      unit: 'mlflow-db',
      state: 'failed',
      exitCode: 1,
      reason: 'cannot connect to postgres://postgres:***@127.0.0.1:15432/bklite',
    });
    expect(lines[1]!.msg).toContain('postgres://postgres:***@');
    expect(lines[2]).toMatchObject({ level: 'info', event: 'verify', ok: true, msg: 'verify passed' });
    expect(lines[3]).toMatchObject({ password: '***', dsn: 'redis://:***@127.0.0.1:16380/0', headers: { authorization: '***' }, msg: 'probe config' });
    expect(lines[4]!.msg).toBe('control token is ***, db at postgres://u:***@h/db');
    expect(lines[5]).toMatchObject({ level: 'error', err: { type: 'Error' }, msg: 'connect failed: postgres://postgres:***@127.0.0.1/bklite' });
    expect(JSON.stringify(lines[5])).toContain('postgres://postgres:***@127.0.0.1/bklite');
  });

  it('a single quiet line reaches the file soon, without waiting for the batch to fill', async () => {
    const logger = createSupervisorLogger(tmp);
    logger.info('just one line');
    await waitFor(() => fs.existsSync(supervisorLogPath(tmp)) && fs.readFileSync(supervisorLogPath(tmp), 'utf8').includes('just one line'), {
      message: 'the line in supervisor.log',
    });
    await closeSupervisorLogger(logger);
  });

  it('an exit right after logging still writes the line (and does not crash at exit)', () => {
    const script = fileURLToPath(new URL('./fixtures/logs/early-exit.ts', import.meta.url));
    const repo = fileURLToPath(new URL('..', import.meta.url)); // where `--import tsx` resolves
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, tmp], { cwd: repo, encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(3);
    const lines = readJsonLines(supervisorLogPath(tmp));
    expect(lines).toEqual([expect.objectContaining({ unit: 'x', msg: 'last words before exit' })]);
  });

  it('does not throw when the log dir cannot be created', async () => {
    const blocker = path.join(tmp, 'file');
    fs.writeFileSync(blocker, 'x');
    const errors: Error[] = [];
    const logger = createSupervisorLogger(path.join(blocker, 'logs'), { onError: (e) => errors.push(e) });
    expect(() => logger.info('hello')).not.toThrow();
    await waitFor(() => errors.length > 0, { message: 'onError' });
    expect(() => logger.info('still fine')).not.toThrow();
    await closeSupervisorLogger(logger);
  });
});
