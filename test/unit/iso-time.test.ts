// isoTimeCache (src/iso-time.ts): always Date#toISOString's answer, whatever order instants come in.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTimeCache } from '../../src/iso-time.js';

describe('isoTimeCache', () => {
  it('answers what toISOString answers, for repeated and changing instants alike', () => {
    const iso = isoTimeCache();
    const instant = fc.integer({ min: 0, max: 8.64e15 });
    fc.assert(
      fc.property(fc.array(fc.oneof(instant, fc.constant(1_700_000_000_000))), (ms) => {
        for (const m of ms) expect(iso(m)).toBe(new Date(m).toISOString());
      }),
    );
  });
});
