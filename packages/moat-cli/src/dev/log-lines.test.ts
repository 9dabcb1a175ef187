import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatLogLine } from './log-lines.js';

test('dev logs - pino JSON lines become "time level msg extra"', () => {
  const time = new Date(2025, 0, 2, 3, 4, 5, 6).getTime();
  const line = JSON.stringify({ level: 40, time, pid: 1, hostname: 'h', msg: 'slow start', port: 9401 });
  assert.equal(formatLogLine(line), '03:04:05.006 WARN  slow start port=9401');
});

test('dev logs - string levels and nested extras are kept readable', () => {
  const line = JSON.stringify({ level: 'error', time: 0, msg: 'boom', err: { message: 'x' } });
  assert.match(formatLogLine(line), /^\d\d:\d\d:\d\d\.\d{3} ERROR boom err=\{"message":"x"\}$/);
});

test('dev logs - other lines pass through unchanged', () => {
  for (const line of ['[123] 2025/01/01 [INF] Server is ready', '{not json', '{"no":"level"}', '']) {
    assert.equal(formatLogLine(line), line);
  }
});
