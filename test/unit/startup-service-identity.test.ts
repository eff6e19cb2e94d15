// The rules on the service's own AWS identity. credvend can assume every profile's role, so its
// own credentials must be short-lived and tied to the running task or pod.
import { describe, expect, it } from 'vitest';
import { serviceIdentityFindings } from '../../src/startup.js';

const AWS = { allowIamUserKeys: false, s3Compatible: false };
const ROLE_SESSION = 'arn:aws:sts::123456789012:assumed-role/credvend-task/3f2a';

describe('serviceIdentityFindings in AWS mode', () => {
  it('accepts temporary task-role credentials', () => {
    expect(
      serviceIdentityFindings({ accessKeyId: 'ASIAEXAMPLE', expires: true, identityArn: ROLE_SESSION }, AWS),
    ).toEqual({
      problems: [],
      warnings: [],
    });
  });

  it('refuses AKIA keys: a leaked long-lived key would keep working after the task is gone', () => {
    const f = serviceIdentityFindings(
      { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', expires: false, identityArn: 'arn:aws:iam::123456789012:user/deploy' },
      AWS,
    );
    expect(f.problems).toHaveLength(1);
    expect(f.problems[0]).toContain('a long-lived AKIA… access key');
    expect(f.problems[0]).toContain('CREDVEND_ALLOW_IAM_USER_KEYS=true');
    // The key id itself is not printed: one less identifier in logs to correlate with a leak.
    expect(f.problems[0]).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('refuses AKIA keys even when GetCallerIdentity could not say who we are', () => {
    expect(serviceIdentityFindings({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', expires: false }, AWS).problems).toHaveLength(
      1,
    );
  });

  it('refuses an IAM user caller with ASIA keys: GetSessionToken keys only look temporary, a user key mints them at will', () => {
    const f = serviceIdentityFindings(
      { accessKeyId: 'ASIAEXAMPLE', expires: true, identityArn: 'arn:aws:iam::123456789012:user/ci/deploy' },
      AWS,
    );
    expect(f.problems[0]).toContain('identity arn:aws:iam::123456789012:user/ci/deploy');
  });

  it('refuses the root user: its keys own the whole account', () => {
    expect(
      serviceIdentityFindings(
        { accessKeyId: 'ASIAEXAMPLE', expires: true, identityArn: 'arn:aws:iam::123456789012:root' },
        AWS,
      ).problems,
    ).toHaveLength(1);
  });

  it('accepts IAM user keys only when explicitly allowed, with a warning (on every start)', () => {
    const f = serviceIdentityFindings(
      { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', expires: false, identityArn: 'arn:aws:iam::123456789012:user/dev' },
      { ...AWS, allowIamUserKeys: true },
    );
    expect(f.problems).toEqual([]);
    expect(f.warnings).toHaveLength(1);
    expect(f.warnings[0]).toContain('allowed by CREDVEND_ALLOW_IAM_USER_KEYS=true');
  });

  it('does not mistake a role whose name contains "user" for an IAM user', () => {
    expect(
      serviceIdentityFindings(
        {
          accessKeyId: 'ASIAEXAMPLE',
          expires: true,
          identityArn: 'arn:aws:sts::123456789012:assumed-role/user-uploads/s',
        },
        AWS,
      ).problems,
    ).toEqual([]);
  });
});

describe('serviceIdentityFindings in S3-compatible mode', () => {
  const S3C = { allowIamUserKeys: false, s3Compatible: true };

  it('accepts static user keys with a warning: Ceph RGW has no task roles to run as', () => {
    const f = serviceIdentityFindings({ accessKeyId: 'AKIARGWUSERKEY', expires: false }, S3C);
    expect(f.problems).toEqual([]);
    expect(f.warnings[0]).toContain('S3-compatible mode: running on static user keys');
  });

  it('warns for non-AKIA static keys too', () => {
    const { warnings } = serviceIdentityFindings({ accessKeyId: '0555b35654ad1656d804', expires: false }, S3C);
    expect(warnings.filter((w) => w.includes('static user keys'))).toHaveLength(1);
  });

  it('no static-key warning for temporary credentials', () => {
    const f = serviceIdentityFindings({ accessKeyId: 'ASIAEXAMPLE', expires: true }, S3C);
    expect(f.problems).toEqual([]);
    expect(f.warnings.filter((w) => w.includes('static user keys'))).toEqual([]);
  });

  it('always warns that session tokens may be malleable on such servers', () => {
    // Measured on Ceph RGW 16: an edited session token can be accepted without its session
    // policy, so the operator must keep each profile role's own policy narrow.
    const f = serviceIdentityFindings({ accessKeyId: 'ASIAEXAMPLE', expires: true }, S3C);
    expect(f.warnings).toEqual([expect.stringContaining('tampering')]);
    expect(
      serviceIdentityFindings(
        { accessKeyId: 'ASIAEXAMPLE', expires: true },
        { allowIamUserKeys: false, s3Compatible: false },
      ).warnings,
    ).toEqual([]);
  });
});
