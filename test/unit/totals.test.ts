// scripts/totals.mjs: the one totals line CI reads, and the failed tests named just above it (CI
// shows only the end of its output, so a count alone cannot be traced back to a test).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'credvend-totals-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the script on the given reports (name → JSON); its stdout and exit code. */
function totals(reports: Record<string, unknown>): { out: string; code: number } {
  const files = Object.entries(reports).map(([name, report]) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(report));
    return file;
  });
  try {
    return { out: execFileSync(process.execPath, ['scripts/totals.mjs', ...files], { encoding: 'utf8' }), code: 0 };
  } catch (e) {
    const err = e as { stdout: string; status: number };
    return { out: err.stdout, code: err.status };
  }
}

const passing = { numPassedTests: 2, numFailedTests: 0, numPendingTests: 1, testResults: [] };

describe('totals', () => {
  it('sums every report into one last line, and exits 0 when nothing failed', () => {
    const { out, code } = totals({ unit: passing, lint: { numPassedTests: 1, numFailedTests: 0, testResults: [] } });
    expect(out.trimEnd().split('\n').at(-1)).toBe('3 passed, 0 failed, 1 skipped');
    expect(out).not.toContain('failed:');
    expect(code).toBe(0);
    expect(readFileSync(join(dir, 'totals.txt'), 'utf8')).toBe('3 passed, 0 failed, 1 skipped\n');
  });

  it('names each failed test, a suite that did not load and a failed check, above the totals', () => {
    const e2e = {
      numPassedTests: 1,
      numFailedTests: 1,
      testResults: [
        {
          name: join(process.cwd(), 'test/e2e/a.test.ts'),
          status: 'failed',
          assertionResults: [
            { fullName: 'a > works', status: 'passed' },
            {
              fullName: 'a > breaks',
              status: 'failed',
              failureMessages: ['\u001b[31mAssertionError: expected 1 to be 2\u001b[39m\n    at x.ts:1'],
            },
          ],
        },
        {
          name: join(process.cwd(), 'test/e2e/b.test.ts'),
          status: 'failed',
          message: '\nSyntaxError: bad',
          assertionResults: [],
        },
      ],
    };
    const { out, code } = totals({ e2e, format: { numPassedTests: 0, numFailedTests: 1, testResults: [] } });
    const lines = out.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('1 passed, 3 failed, 0 skipped');
    expect(lines).toEqual(
      expect.arrayContaining([
        '  e2e: a > breaks — AssertionError: expected 1 to be 2',
        '  e2e: test/e2e/b.test.ts did not run — SyntaxError: bad',
        '  format: failed',
      ]),
    );
    expect(out).not.toContain('a > works');
    expect(code).toBe(1);
  });

  it('fails, naming it, when a report is missing, even with nothing failed in the others', () => {
    const { code } = totals({ unit: passing });
    expect(code).toBe(0);
    let failed = { stdout: '', status: 0 };
    try {
      execFileSync(process.execPath, ['scripts/totals.mjs', join(dir, 'unit.json'), join(dir, 'e2e.json')], {
        stdio: 'pipe',
        encoding: 'utf8',
      });
    } catch (e) {
      failed = e as { stdout: string; status: number };
    }
    expect(failed.status).toBe(1);
    expect(failed.stdout).toContain('  e2e: no report (the suite did not finish)');
  });
});
