// lineWriter (src/log-lines.ts): the access line is byte for byte what pino writes for the same
// fields, and batches keep every line, in order, and go out by size, by time or on flush.
import pino, { type Logger } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lineWriter } from '../../src/log-lines.js';

/** A pino logger writing into an array; `opts` as server.ts or the test harness build theirs. */
function captured(opts: pino.LoggerOptions) {
  const chunks: string[] = [];
  const logger: Logger = pino(opts, { write: (s: string) => void chunks.push(s) });
  return { logger, chunks };
}

const FIXED_TIME = () => ',"time":"2026-11-30T00:00:00.000Z"';
const fields = {
  reqId: '4f7c2e3a-1b2c-4d5e-8f90-123456789abc',
  method: 'POST',
  route: '/v1/credentials',
  status: 200,
  ms: 1.3,
  ip: '203.0.113.9',
};

describe('lineWriter', () => {
  afterEach(() => void vi.useRealTimers());

  it.each([
    [
      'the service’s logger',
      { level: 'info', base: { service: 'credvend' }, timestamp: pino.stdTimeFunctions.isoTime },
    ],
    ['a fixed clock (times compared too)', { level: 'info', base: { service: 'credvend' }, timestamp: FIXED_TIME }],
    ['a default pino logger (pid, hostname)', { level: 'debug', timestamp: FIXED_TIME }],
    ['a child with other bindings', { level: 'info', base: { service: 'credvend', listener: 'api' } }],
  ] as const)('writes what pino writes, for %s', (_name, opts: pino.LoggerOptions) => {
    const mine = captured(opts);
    const theirs = captured(opts);
    const odd = { ...fields, ip: 'a"b\\c\nd\u0001e\u2028é', route: 'unmatched' };
    for (const [level, f] of [
      ['info', fields],
      ['info', odd],
      ['debug', fields],
    ] as const) {
      lineWriter(mine.logger).write(level, f, 'request');
      theirs.logger[level](f, 'request');
    }
    // Wall-clock times differ between the two calls: compared without them.
    const untimed = (lines: string[]) => lines.map((l) => l.replace(/,"time":[^,]+/, ''));
    expect(untimed(mine.chunks)).toEqual(untimed(theirs.chunks));
    expect(mine.chunks.length).toBe(opts.level === 'debug' ? 3 : 2);
    for (const line of mine.chunks) expect(JSON.parse(line)).toMatchObject({ msg: 'request', method: 'POST' });
    if (opts.timestamp === FIXED_TIME) expect(mine.chunks).toEqual(theirs.chunks);
    if (opts.timestamp === pino.stdTimeFunctions.isoTime) {
      const t = Date.parse((JSON.parse(mine.chunks[0]!) as { time: string }).time);
      expect(Math.abs(t - Date.now())).toBeLessThan(5_000);
    }
  });

  it('writes nothing at a level the logger has off', () => {
    const { logger, chunks } = captured({ level: 'warn' });
    lineWriter(logger).write('info', fields, 'request');
    expect(chunks).toEqual([]);
  });

  it('batches: one write per batch once `bytes` have gathered, every line kept in order', () => {
    const { logger, chunks } = captured({ level: 'info' });
    const lines = lineWriter(logger, { bytes: 1000, ms: 60_000 });
    for (let i = 0; i < 30; i++) lines.write('info', { ...fields, status: i }, 'request');
    lines.flush();
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.length).toBeLessThan(10);
    const statuses = chunks
      .join('')
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { status: number }).status);
    expect(statuses).toEqual([...Array(30).keys()]);
  });

  it('batches: a line waits at most `ms`', () => {
    vi.useFakeTimers();
    const { logger, chunks } = captured({ level: 'info' });
    const lines = lineWriter(logger, { bytes: 1 << 20, ms: 200 });
    lines.write('info', fields, 'request');
    vi.advanceTimersByTime(150);
    lines.write('info', fields, 'request');
    expect(chunks).toEqual([]);
    vi.advanceTimersByTime(50); // 200 ms after the first line
    expect(chunks.length).toBe(1);
    expect(chunks[0]!.split('\n').filter(Boolean)).toHaveLength(2);
  });
});
