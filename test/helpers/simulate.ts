// Evaluates vended session policies with @cloud-copilot/iam-simulate, so tests assert what IAM
// would decide rather than what the JSON looks like.
//
// How the simulator is used, and why:
// - AWS evaluates vended credentials as (role identity policy) ∩ (inline session policy). The
//   simulator's `runUnsafeSimulation` ignores session policies and `runSimulation` (validated mode)
//   drops context keys it does not know for the action, including every
//   `kms:EncryptionContext:<key>` key (its variable-key match needs a '/' in the key name). So each
//   decision is two unsafe passes: pass 1 with a broad role policy (must allow), pass 2 with the
//   session policy alone as the only identity policy. Allowed only if both allow.
// - KMS keys need a key policy that delegates to IAM (the default key policy); without one the
//   simulator, like KMS, denies. Unsafe mode loads the resource policy without a name and then
//   crashes reading it, so it is passed pre-loaded in iam-policy's ValidatedPolicy shape.
// - The simulator treats a `*` in the REQUEST resource as a wildcard (any overlapping object), so a
//   request for an object whose key contains a literal `*` cannot be expressed. Callers check
//   denials of other keys (which have no `*`) and check allowance of such keys structurally.
// - `${*}`, `${?}` and `${$}` in StringEquals condition values are kept literal by the simulator
//   (it substitutes them only where wildcards apply: Resource, StringLike).
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate';

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';
export type PolicyDocument = Readonly<Record<string, unknown>>;
export type Context = Record<string, string | string[]>;

export const ACCOUNT = '123456789012';

export function broadRolePolicy(): PolicyDocument {
  return { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:*', 'kms:*'], Resource: '*' }] };
}

function partitionOf(arn: string): string {
  return arn.split(':')[1] ?? 'aws';
}

function sessionPrincipal(partition: string): string {
  return `arn:${partition}:sts::${ACCOUNT}:assumed-role/credvend-uploads/alice.0123abcd.req`;
}

interface PreloadedPolicy {
  readonly __validated: true;
  readonly policyDocument: PolicyDocument;
  readonly metadata: { readonly name: string };
  readonly errors: readonly never[];
}

/** The default KMS key policy: the account root, i.e. "IAM policies decide". */
function defaultKeyPolicy(partition: string): PreloadedPolicy {
  return {
    __validated: true,
    metadata: { name: 'default-key-policy' },
    errors: [],
    policyDocument: {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:${partition}:iam::${ACCOUNT}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    },
  };
}

export interface SimRequest {
  readonly action: string;
  /** The ARN of the object (or KMS key) the request touches. */
  readonly resource: string;
  readonly context?: Context;
}

/** One unsafe pass with `policy` as the only identity policy. */
export function evaluateIdentityPolicy(policy: PolicyDocument, req: SimRequest): Decision {
  const partition = partitionOf(req.resource);
  const isKms = req.resource.split(':')[2] === 'kms';
  return runUnsafeSimulation(
    {
      request: {
        principal: sessionPrincipal(partition),
        action: req.action,
        resource: { resource: req.resource, accountId: ACCOUNT },
        contextVariables: req.context ?? {},
      },
      identityPolicies: [{ name: 'policy', policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(isKms ? { resourcePolicy: defaultKeyPolicy(partition) } : {}),
    },
    {},
  );
}

/** Role policy ∩ session policy, as AWS evaluates vended credentials (two unsafe passes). */
export function evaluateSession(
  sessionPolicy: PolicyDocument,
  req: SimRequest,
  rolePolicy: PolicyDocument = broadRolePolicy(),
): Decision {
  const role = evaluateIdentityPolicy(rolePolicy, req);
  if (role !== 'Allowed')
    throw new Error(`the role policy must allow ${req.action} on ${req.resource} (got ${role}); the test is broken`);
  return evaluateIdentityPolicy(sessionPolicy, req);
}

/**
 * The validated simulator with the session policy in its real slot. Use for requests without a
 * `*` in the resource and without kms:EncryptionContext keys; throws if the simulator rejects
 * the policy or the request (e.g. an invalid action name or policy grammar).
 */
export async function simulateValidated(
  sessionPolicy: PolicyDocument,
  req: SimRequest,
  rolePolicy: PolicyDocument = broadRolePolicy(),
): Promise<Decision> {
  const partition = partitionOf(req.resource);
  const result = await runSimulation(
    {
      request: {
        principal: sessionPrincipal(partition),
        action: req.action,
        resource: { resource: req.resource, accountId: ACCOUNT },
        contextVariables: req.context ?? {},
      },
      sessionPolicy,
      identityPolicies: [{ name: 'role', policy: rolePolicy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`simulation rejected: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}
