// Runs after the unit and app suites (npm test): every app-log and audit-log line those suites
// wrote is scanned for every secret they issued or used. Stops: a secret key, session token or
// JWT leaking into logs, where far more people and systems can read it than the caller.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = process.env.CREDVEND_TEST_CAPTURE_DIR;

describe('secret scan over the app suites traffic', () => {
  it('no log line contains a secret key, a session token or a JWT (or its signature)', () => {
    expect(dir, 'run through `npm test`, which sets CREDVEND_TEST_CAPTURE_DIR').toBeTruthy();
    const files = readdirSync(dir!).filter((f) => f.endsWith('.json'));
    const secrets = new Set<string>();
    const lines: string[] = [];
    for (const f of files) {
      const c = JSON.parse(readFileSync(join(dir!, f), 'utf8')) as { secrets: string[]; lines: string[] };
      c.secrets.forEach((s) => secrets.add(s));
      lines.push(...c.lines);
    }
    // The scan is only meaningful over real traffic: many apps, many lines, many secrets.
    expect(files.length).toBeGreaterThan(30);
    expect(lines.length).toBeGreaterThan(100);
    expect(secrets.size).toBeGreaterThan(50);
    const needles = new Set<string>();
    for (const s of secrets) {
      needles.add(s);
      const parts = s.split('.');
      if (parts.length === 3) {
        if (parts[1] && parts[1].length > 16) needles.add(parts[1]); // payload
        if (parts[2] && parts[2].length > 16) needles.add(parts[2]); // signature
      }
    }
    const leaks: string[] = [];
    for (const line of lines)
      for (const n of needles) if (line.includes(n)) leaks.push(`${n.slice(0, 12)}… in ${line.slice(0, 120)}`);
    expect(leaks).toEqual([]);
  });

  it('the audit records of issued credentials carry the access key id (CloudTrail join) but no secret field', () => {
    const lines = readdirSync(dir!).flatMap(
      (f) => (JSON.parse(readFileSync(join(dir!, f), 'utf8')) as { lines: string[] }).lines,
    );
    const issued = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.event === 'credentials.issued');
    expect(issued.length).toBeGreaterThan(10);
    for (const r of issued) {
      expect(r.accessKeyId).toMatch(/^ASIA/);
      expect(r).not.toHaveProperty('secretAccessKey');
      expect(r).not.toHaveProperty('sessionToken');
    }
  });
});
