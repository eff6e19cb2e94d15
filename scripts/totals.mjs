// Sums vitest JSON reports into the one totals line CI reads: `N passed, M failed, K skipped`.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';

/** A failure message's first non-empty line, without colour codes, at most 300 characters. */
function firstLine(message) {
  const plain = String(message ?? '').replace(/\u001b\[[0-9;]*m/g, '');
  return (plain.split('\n').find((l) => l.trim() !== '') ?? '').trim().slice(0, 300);
}

let passed = 0,
  failed = 0,
  skipped = 0,
  missing = 0;
const failures = []; // `report: test — first line of its message`, printed just above the totals
for (const file of process.argv.slice(2)) {
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    missing += 1;
    failures.push(`${basename(file, '.json')}: no report (the suite did not finish)`);
    continue;
  }
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  const report = basename(file, '.json');
  if ((r.numFailedTests ?? 0) > 0 && !r.testResults?.length) failures.push(`${report}: failed`); // a static check
  for (const s of r.testResults ?? []) {
    // A suite file that failed to load has no tests but must not pass silently.
    if (s.status === 'failed' && (s.assertionResults ?? []).length === 0) {
      failed += 1;
      failures.push(`${report}: ${relative(process.cwd(), s.name)} did not run — ${firstLine(s.message)}`);
    }
    for (const a of s.assertionResults ?? [])
      if (a.status === 'failed')
        failures.push(`${report}: ${a.fullName ?? a.title} — ${firstLine(a.failureMessages?.[0])}`);
  }
}
// CI shows the end of its output: the failures are named there, not only counted.
if (failures.length > 0) console.log(`\nfailed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
const line = `${passed} passed, ${failed} failed, ${skipped} skipped`;
console.log(`\n${line}`);
if (process.argv[2]) writeFileSync(join(dirname(process.argv[2]), 'totals.txt'), `${line}\n`);
process.exit(failed > 0 || missing > 0 ? 1 : 0);
