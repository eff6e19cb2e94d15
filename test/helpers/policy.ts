import { PolicyError, type DenialReason } from '../../src/policy/errors.js';

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
