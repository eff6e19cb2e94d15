// The IAM policy FILES of docs/iam/ (the ones docs/deploy.md tells operators to create), evaluated
// as AWS would with @cloud-copilot/iam-simulate:
// - the service role (credvend's own role: IRSA, Pod Identity or ECS task role) can assume, tag
//   and set the SourceIdentity of exactly the example profile roles, describe the profile KMS key,
//   and nothing else: no other role (same or another account), no iam:*, no s3:*, no other KMS use;
// - each profile role's trust policy (as the role's resource policy) admits the service role's
//   sessions with a SourceIdentity and refuses a missing SourceIdentity and any other principal,
//   even one whose own policies allow everything;
// - each profile role's permission policy allows what credvend's session policies ask for under
//   its prefix (the actions come from src/policy/session-policy.ts) and nothing outside it.
// STS decisions use the validated simulator (runSimulation) with the trust policy in the
// resource-policy slot: for sts:AssumeRole a trust policy must name the principal even within one
// account, which the simulator's STS authorizer models. Identity-only decisions on S3/KMS use the
// unsafe pass of test/helpers/simulate.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { describe, expect, it } from 'vitest';
import { kmsActions, s3Actions } from '../../src/policy/session-policy.js';
import { ROOT } from '../helpers/e2e.js';
import { evaluateIdentityPolicy, type Decision, type PolicyDocument } from '../helpers/simulate.js';

const IAM = join(ROOT, 'docs/iam');
const ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '999999999999';
const SERVICE_ROLE = `arn:aws:iam::${ACCOUNT}:role/credvend-service`;
/** A session of the service role, as STS sees credvend's calls. */
const SERVICE_SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/credvend-service/i-0123456789abcdef0`;
const KEY = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const ADMIN: PolicyDocument = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };

type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};
type Policy = { Version: string; Statement: Statement[] };
const load = (file: string): Policy => JSON.parse(readFileSync(join(IAM, file), 'utf8')) as Policy;
const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The example profiles the roles are for (docs/deploy.md §6): what credvend asks of each role. */
const PROFILES: Record<
  string,
  { bucket: string; prefix: string; operations: ('upload' | 'download')[]; kms?: string }
> = {
  'credvend-uploads': { bucket: 'my-uploads', prefix: 'uploads/', operations: ['upload', 'download'] },
  'credvend-ci-artifacts': { bucket: 'my-ci-artifacts', prefix: 'ci/', operations: ['upload'], kms: KEY },
};

const service = load('service-role-permissions.json');
const roleNames = [...new Set(readdirSync(join(IAM, 'profile-roles')).map((f) => f.split('.')[0]!))].sort();
const roleArn = (name: string, account = ACCOUNT) => `arn:aws:iam::${account}:role/${name}`;
const trustOf = (name: string) => load(`profile-roles/${name}.trust.json`);
const permissionsOf = (name: string) => load(`profile-roles/${name}.permissions.json`);

interface StsRequest {
  readonly principal?: string;
  readonly action: string;
  readonly role: string;
  readonly context?: Record<string, string | string[]>;
  /** The caller's identity policy; the service role's by default. */
  readonly identity?: PolicyDocument;
  /** The target role's trust policy; none (identity decides alone) when undefined. */
  readonly trust?: PolicyDocument;
}

async function sts(req: StsRequest): Promise<Decision> {
  const result = await runSimulation(
    {
      request: {
        principal: req.principal ?? SERVICE_SESSION,
        action: req.action,
        resource: { resource: req.role, accountId: req.role.split(':')[4]! },
        contextVariables: req.context ?? {},
      },
      identityPolicies: [{ name: 'identity', policy: req.identity ?? service }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(req.trust ? { resourcePolicy: req.trust } : {}),
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`simulation rejected: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}

/** A trust policy that trusts a whole account: only the caller's identity policy can refuse. */
const trustsAccount = (account: string): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${account}:root` },
      Action: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'],
    },
  ],
});

const WITH_SOURCE_IDENTITY = { 'sts:SourceIdentity': 'alice' };

describe('docs/iam: the IAM policy files', () => {
  it('are the files docs/deploy.md points to, one trust and one permission policy per example profile role', () => {
    expect(roleNames).toEqual(Object.keys(PROFILES).sort());
    const deploy = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
    const files = [
      'service-role-permissions.json',
      ...roleNames.flatMap((n) => [`profile-roles/${n}.trust.json`, `profile-roles/${n}.permissions.json`]),
    ];
    for (const f of files) expect(deploy, f).toContain(`iam/${f}`);
    // Any JSON shown inline in docs/deploy.md is a copy of its file, never a variant.
    for (const m of deploy.matchAll(/<!-- docs\/iam\/(\S+) -->\s*```json\n([\s\S]*?)\n```/g))
      expect(JSON.parse(m[2]!), m[1]).toEqual(load(m[1]!));
  });

  describe('the service role', () => {
    it('may assume, tag and set the SourceIdentity of exactly the profile roles', async () => {
      // Structurally: Allow only, no wildcard in an action or a resource, no NotAction/NotResource.
      for (const s of service.Statement) {
        expect(s.Effect).toBe('Allow');
        expect(Object.keys(s).sort()).toEqual(expect.arrayContaining(['Action', 'Effect', 'Resource']));
        expect(Object.keys(s).filter((k) => k.startsWith('Not'))).toEqual([]);
        for (const v of [...list(s.Action), ...list(s.Resource)]) expect(v, 'no wildcards').not.toMatch(/[*?]/);
      }
      const assumable = service.Statement.filter((s) => list(s.Action).includes('sts:AssumeRole')).flatMap((s) =>
        list(s.Resource),
      );
      expect(assumable.sort()).toEqual(roleNames.map((n) => roleArn(n)).sort());

      for (const name of roleNames)
        for (const action of ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'])
          expect(await sts({ action, role: roleArn(name) }), `${action} ${name}`).toBe('Allowed');
    });

    it('can assume no other role: not in its account, not one of the same name in another account (even where trusted)', async () => {
      const others = [
        roleArn('admin'),
        roleArn('credvend-service'),
        roleArn('credvend-uploads-2'),
        roleArn('credvend-uploads', OTHER_ACCOUNT),
        roleArn('credvend-ci-artifacts', OTHER_ACCOUNT),
      ];
      for (const role of others) {
        const trust = trustsAccount(ACCOUNT); // the other role trusts credvend's account: the service role's own policy must refuse
        for (const action of ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'])
          expect(await sts({ action, role, trust, context: WITH_SOURCE_IDENTITY }), `${action} ${role}`).toBe(
            'ImplicitlyDenied',
          );
      }
      // The control: the same request on a profile role with such a trust policy is allowed.
      expect(
        await sts({
          action: 'sts:AssumeRole',
          role: roleArn('credvend-uploads'),
          trust: trustsAccount(ACCOUNT),
          context: WITH_SOURCE_IDENTITY,
        }),
      ).toBe('Allowed');
    });

    it('may describe the profile KMS key, and has no iam:*, s3:* or other KMS permission', () => {
      const denied: [string, string][] = [
        ['iam:PassRole', roleArn('credvend-uploads')],
        ['iam:CreateRole', roleArn('x')],
        ['iam:PutRolePolicy', roleArn('credvend-uploads')],
        ['iam:AttachRolePolicy', roleArn('credvend-ci-artifacts')],
        ['iam:UpdateAssumeRolePolicy', roleArn('credvend-uploads')],
        ['s3:PutObject', 'arn:aws:s3:::my-uploads/uploads/alice/a.pdf'],
        ['s3:GetObject', 'arn:aws:s3:::my-ci-artifacts/ci/group/app/build.tar.gz'],
        ['s3:DeleteObject', 'arn:aws:s3:::my-uploads/uploads/alice/a.pdf'],
        ['s3:ListBucket', 'arn:aws:s3:::my-uploads'],
        ['s3:PutBucketPolicy', 'arn:aws:s3:::my-uploads'],
        ['kms:Decrypt', KEY],
        ['kms:GenerateDataKey', KEY],
        ['kms:DescribeKey', `arn:aws:kms:eu-west-1:${ACCOUNT}:key/ffffffff-12ab-34cd-56ef-1234567890ab`],
      ];
      for (const [action, resource] of denied)
        expect(evaluateIdentityPolicy(service, { action, resource }), `${action} ${resource}`).toBe('ImplicitlyDenied');
      expect(evaluateIdentityPolicy(service, { action: 'kms:DescribeKey', resource: KEY })).toBe('Allowed');
    });
  });

  describe.each(Object.keys(PROFILES))('profile role %s', (name) => {
    const role = roleArn(name);

    it('trusts the service role with a SourceIdentity, and refuses it without one', async () => {
      const trust = trustOf(name);
      for (const s of trust.Statement) expect(s.Principal).toEqual({ AWS: SERVICE_ROLE });
      expect(
        trust.Statement.filter((s) => list(s.Action).includes('sts:AssumeRole')).every((s) =>
          JSON.stringify(s.Condition ?? {}).includes('"sts:SourceIdentity"'),
        ),
      ).toBe(true);

      for (const action of ['sts:AssumeRole', 'sts:SetSourceIdentity'])
        expect(await sts({ action, role, trust, context: WITH_SOURCE_IDENTITY }), action).toBe('Allowed');
      // credvend always sets it; a caller that does not (a person with the service role's keys) is refused
      expect(await sts({ action: 'sts:AssumeRole', role, trust })).toBe('ImplicitlyDenied');
      expect(await sts({ action: 'sts:AssumeRole', role, trust, context: { 'sts:SourceIdentity': '' } })).toBe(
        'ImplicitlyDenied',
      );
    });

    it('refuses every other principal, even one whose own policies allow everything', async () => {
      const trust = trustOf(name);
      const strangers = [
        `arn:aws:sts::${ACCOUNT}:assumed-role/admin/alice`,
        `arn:aws:iam::${ACCOUNT}:role/admin`,
        `arn:aws:iam::${ACCOUNT}:user/alice`,
        `arn:aws:iam::${ACCOUNT}:root`,
        `arn:aws:sts::${OTHER_ACCOUNT}:assumed-role/credvend-service/i-0123456789abcdef0`,
        `arn:aws:iam::${OTHER_ACCOUNT}:role/credvend-service`,
      ];
      for (const principal of strangers)
        for (const action of ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'])
          expect(
            await sts({ principal, identity: ADMIN, action, role, trust, context: WITH_SOURCE_IDENTITY }),
            `${principal} ${action}`,
          ).toBe('ImplicitlyDenied');
    });

    it('grants what credvend asks for under its prefix and nothing beyond it', () => {
      const p = PROFILES[name]!;
      const perms = permissionsOf(name);
      const inside = `arn:aws:s3:::${p.bucket}/${p.prefix}alice/report.pdf`;
      const wanted = [...new Set(p.operations.flatMap((op) => s3Actions(op, false)))];
      for (const action of wanted)
        expect(evaluateIdentityPolicy(perms, { action, resource: inside }), action).toBe('Allowed');
      if (p.kms) {
        const kms = [...new Set(p.operations.flatMap((op) => kmsActions(op)))];
        const viaS3 = { 'kms:ViaService': `s3.eu-west-1.amazonaws.com` };
        for (const action of kms) {
          expect(evaluateIdentityPolicy(perms, { action, resource: p.kms, context: viaS3 }), action).toBe('Allowed');
          expect(evaluateIdentityPolicy(perms, { action, resource: p.kms }), `${action} outside S3`).toBe(
            'ImplicitlyDenied',
          );
        }
      }
      const denied: [string, string][] = [
        ['s3:PutObject', `arn:aws:s3:::${p.bucket}/other/alice/report.pdf`],
        ['s3:PutObject', `arn:aws:s3:::other-bucket/${p.prefix}alice/report.pdf`],
        ['s3:DeleteObject', inside],
        ['s3:PutObjectAcl', inside],
        ['s3:ListBucket', `arn:aws:s3:::${p.bucket}`],
        ['s3:PutBucketPolicy', `arn:aws:s3:::${p.bucket}`],
        ['kms:Decrypt', `arn:aws:kms:eu-west-1:${ACCOUNT}:key/ffffffff-12ab-34cd-56ef-1234567890ab`],
        ['sts:AssumeRole', roleArn('admin')],
        ['iam:PassRole', role],
      ];
      if (!p.operations.includes('download')) denied.push(['s3:GetObject', inside]);
      for (const [action, resource] of denied)
        expect(
          evaluateIdentityPolicy(perms, {
            action,
            resource,
            context: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' },
          }),
          `${action} ${resource}`,
        ).toBe('ImplicitlyDenied');
    });
  });

  it('credvend-ci-artifacts accepts only the session tags its profile sets', async () => {
    const role = roleArn('credvend-ci-artifacts');
    const trust = trustOf('credvend-ci-artifacts');
    const tags = (keys: string[]) => ({
      ...WITH_SOURCE_IDENTITY,
      'aws:TagKeys': keys,
      ...Object.fromEntries(keys.map((k) => [`aws:RequestTag/${k}`, 'x'])),
    });
    expect(await sts({ action: 'sts:TagSession', role, trust, context: tags(['project', 'env']) })).toBe('Allowed');
    expect(await sts({ action: 'sts:TagSession', role, trust, context: tags(['project', 'admin']) })).toBe(
      'ImplicitlyDenied',
    );
    // credvend-uploads' profile sets no tags, so its role does not allow tagging at all
    expect(
      await sts({
        action: 'sts:TagSession',
        role: roleArn('credvend-uploads'),
        trust: trustOf('credvend-uploads'),
        context: tags(['project']),
      }),
    ).toBe('ImplicitlyDenied');
  });
});
