// Sums vitest JSON reports into the one totals line CI reads: `N passed, M failed, K skipped`.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let passed = 0,
  failed = 0,
  skipped = 0,
  missing = 0;
for (const file of process.argv.slice(2)) {
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    missing += 1;
    continue;
  }
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A suite file that failed to load has no tests but must not pass silently.
  for (const s of r.testResults ?? [])
    if (s.status === 'failed' && (s.assertionResults ?? []).length === 0) failed += 1;
}
const line = `${passed} passed, ${failed} failed, ${skipped} skipped`;
console.log(`\n${line}`);
if (process.argv[2]) writeFileSync(join(dirname(process.argv[2]), 'totals.txt'), `${line}\n`);
process.exit(failed > 0 || missing > 0 ? 1 : 0);
