// buildSessionPolicy: the inline session policy sent with every AssumeRole. Pure: no I/O.
//
// The effective permissions of the vended credentials are the intersection of the role's policies
// and this document, so this is where the blast radius is decided: statements name exact object
// ARNs (or one explicitly allowed prefix), never a bucket or a wildcard the caller supplied.
import { s3BucketArn, s3ObjectArn, type Partition } from '../arn.js';
import { PolicyError } from './errors.js';
import { escapeIamWildcards } from './keys.js';

/** What a grant is for; the one list the API and the profiles file validate against. */
export const OPERATIONS = ['upload', 'download'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** STS rejects a plaintext inline session policy over 2048 characters. */
export const MAX_POLICY_CHARS = 2048;

export interface PolicyInput {
  readonly partition: Partition;
  readonly bucket: string;
  readonly region: string;
  readonly operation: Operation;
  /** Full object keys (profile prefix already applied), or a full prefix for a prefix grant. */
  readonly target: { readonly keys: readonly string[] } | { readonly prefix: string };
  readonly versionedReads: boolean;
  readonly kmsKeyArn?: string | undefined;
  readonly bucketKeyEnabled: boolean;
}

export interface SessionPolicy {
  readonly document: Readonly<Record<string, unknown>>;
  /** Compact JSON, exactly as sent to STS. */
  readonly json: string;
}

const UPLOAD_ACTIONS = ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'];

export function s3Actions(op: Operation, versionedReads: boolean): string[] {
  if (op === 'upload') return UPLOAD_ACTIONS;
  return versionedReads ? ['s3:GetObject', 's3:GetObjectVersion'] : ['s3:GetObject'];
}

export function kmsActions(op: Operation): string[] {
  // Multipart uploads decrypt the data key of earlier parts, so uploads need kms:Decrypt too.
  return op === 'upload' ? ['kms:GenerateDataKey', 'kms:Decrypt'] : ['kms:Decrypt'];
}

export function buildSessionPolicy(input: PolicyInput): SessionPolicy {
  const objectBase = s3ObjectArn(input.partition, input.bucket, '');
  const isPrefix = 'prefix' in input.target;
  // Object ARNs with IAM wildcards escaped; only a prefix grant gets the one trailing `*`, which
  // is ours, after the escaped prefix.
  const resources =
    'prefix' in input.target
      ? [`${objectBase}${escapeIamWildcards(input.target.prefix)}*`]
      : [...new Set(input.target.keys)].map((k) => `${objectBase}${escapeIamWildcards(k)}`);

  const statements: Record<string, unknown>[] = [
    {
      Effect: 'Allow',
      Action: s3Actions(input.operation, input.versionedReads),
      Resource: resources.length === 1 ? resources[0] : resources,
    },
  ];

  if (input.kmsKeyArn) {
    // The key may only be used by S3 in this region, and (without S3 Bucket Keys) only for these
    // objects: S3 passes the object ARN as encryption context. With Bucket Keys, S3 passes the
    // bucket ARN instead, so that is the narrowest context available.
    const context = input.bucketKeyEnabled
      ? { StringEquals: { 'kms:EncryptionContext:aws:s3:arn': s3BucketArn(input.partition, input.bucket) } }
      : isPrefix
        ? { StringLike: { 'kms:EncryptionContext:aws:s3:arn': resources[0] } }
        : { StringEquals: { 'kms:EncryptionContext:aws:s3:arn': resources.length === 1 ? resources[0] : resources } };
    const condition: Record<string, Record<string, unknown>> = {
      StringEquals: { 'kms:ViaService': `s3.${input.region}.amazonaws.com`, ...(context.StringEquals ?? {}) },
    };
    if (context.StringLike) condition.StringLike = context.StringLike;
    statements.push({
      Effect: 'Allow',
      Action: kmsActions(input.operation),
      Resource: input.kmsKeyArn,
      Condition: condition,
    });
  }

  const document = { Version: '2012-10-17', Statement: statements };
  const json = JSON.stringify(document);
  if (json.length > MAX_POLICY_CHARS) {
    // Never fall back to a broader policy (e.g. a prefix) to make it fit.
    throw new PolicyError(
      'policy_too_large',
      `the session policy would be ${json.length} characters, over STS's ${MAX_POLICY_CHARS}: request fewer or shorter keys`,
    );
  }
  return { document, json };
}
