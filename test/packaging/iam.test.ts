// The IAM policies of docs/deploy.md, evaluated as AWS would (@cloud-copilot/iam-simulate): the
// service role can assume exactly the profile roles (with session tags and SourceIdentity) and
// describe the KMS key, and nothing else; the profile role trusts only the service role.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/e2e.js';
import { evaluateIdentityPolicy, type PolicyDocument } from '../helpers/simulate.js';

const doc = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
function policy(name: string): PolicyDocument & { Statement: Record<string, any>[] } { // eslint-disable-line @typescript-eslint/no-explicit-any -- IAM JSON
  const m = new RegExp(`<!-- iam:${name} -->\\s*\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/deploy.md has no iam:${name} block`);
  return JSON.parse(m[1]!) as PolicyDocument & { Statement: Record<string, unknown>[] };
}

const service = policy('service-role-permissions');
const PROFILE_ROLES = service.Statement[0]!.Resource as string[];
const KEY = service.Statement[1]!.Resource as string;

describe('docs/deploy.md IAM', () => {
  it('the service role may assume, tag and set the SourceIdentity of exactly the profile roles', () => {
    for (const role of PROFILE_ROLES)
      for (const action of ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'])
        expect(evaluateIdentityPolicy(service, { action, resource: role }), `${action} ${role}`).toBe('Allowed');
    for (const other of ['arn:aws:iam::123456789012:role/admin', 'arn:aws:iam::123456789012:role/credvend-uploads-2', 'arn:aws:iam::999999999999:role/credvend-uploads'])
      expect(evaluateIdentityPolicy(service, { action: 'sts:AssumeRole', resource: other }), other).toBe('ImplicitlyDenied');
  });

  it('the service role may describe the profile KMS key and touch nothing else', () => {
    expect(evaluateIdentityPolicy(service, { action: 'kms:DescribeKey', resource: KEY })).toBe('Allowed');
    expect(evaluateIdentityPolicy(service, { action: 'kms:Decrypt', resource: KEY })).toBe('ImplicitlyDenied');
    expect(evaluateIdentityPolicy(service, { action: 's3:PutObject', resource: 'arn:aws:s3:::my-uploads/uploads/a' })).toBe('ImplicitlyDenied');
    expect(evaluateIdentityPolicy(service, { action: 'iam:PassRole', resource: PROFILE_ROLES[0]! })).toBe('ImplicitlyDenied');
  });

  it('each profile role trusts only the service role, and only with a SourceIdentity', () => {
    const trust = policy('profile-role-trust');
    expect(trust.Statement).toHaveLength(1);
    const [s] = trust.Statement;
    expect(s!.Principal).toEqual({ AWS: 'arn:aws:iam::123456789012:role/credvend-service' });
    expect(s!.Action).toEqual(['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity']);
    expect(Object.values(s!.Condition as Record<string, Record<string, string>>).some((c) => 'sts:SourceIdentity' in c)).toBe(true);
  });

  it('the profile role grants object access under its prefix only', () => {
    const perms = policy('profile-role-permissions');
    expect(evaluateIdentityPolicy(perms, { action: 's3:PutObject', resource: 'arn:aws:s3:::my-uploads/uploads/alice/a.pdf' })).toBe('Allowed');
    expect(evaluateIdentityPolicy(perms, { action: 's3:PutObject', resource: 'arn:aws:s3:::my-uploads/other/a.pdf' })).toBe('ImplicitlyDenied');
    expect(evaluateIdentityPolicy(perms, { action: 's3:DeleteObject', resource: 'arn:aws:s3:::my-uploads/uploads/alice/a.pdf' })).toBe('ImplicitlyDenied');
    expect(evaluateIdentityPolicy(perms, { action: 's3:GetObject', resource: 'arn:aws:s3:::other-bucket/uploads/a' })).toBe('ImplicitlyDenied');
  });
});
