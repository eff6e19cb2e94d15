// Domain errors of the policy core. They know nothing of HTTP: src/errors.ts maps each reason to
// a status and a CV_* code. `reason` is a bounded set, so it is also safe as a metric label.
export type DenialReason =
  | 'profile_unknown'
  | 'profile_mismatch'
  | 'claim_missing'
  | 'claim_invalid'
  | 'operation_not_allowed'
  | 'prefix_grant_not_allowed'
  | 'too_many_keys'
  | 'invalid_key'
  | 'policy_too_large'
  | 'delivery_mismatch';

export class PolicyError extends Error {
  constructor(
    readonly reason: DenialReason,
    message: string,
  ) {
    super(message);
    this.name = 'PolicyError';
  }
}
