import { PolicyError, type DenialReason } from '../../src/policy/errors.js';
import type { IssuancePlan } from '../../src/policy/plan.js';

/** A plan as planIssuance makes one, for tests of what carries it to STS (no policy logic). */
export const PLAN: IssuancePlan = {
  profile: 'uploads',
  operation: 'upload',
  roleArn: 'arn:aws:iam::123456789012:role/vendor',
  bucket: 'tenant-bucket',
  region: 'eu-west-1',
  keys: ['uploads/a'],
  roleSessionName: 'cv-test',
  durationSeconds: 900,
  policy: { document: {}, json: '{"Version":"2012-10-17","Statement":[]}' },
  policyArns: [],
  tags: [],
  transitiveTagKeys: [],
  sourceIdentity: 'cv-test',
  claimsUsed: [],
};

/** The PolicyError reason `fn` throws, or 'no error'; any other error is rethrown. */
export function reasonOf(fn: () => unknown): DenialReason | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (e) {
    if (e instanceof PolicyError) return e.reason;
    throw e;
  }
}
