// Loopback stand-ins for the AWS endpoints the service's own credentials come from (ECS / EKS
// container credentials, STS) and that start-up calls (STS GetCallerIdentity, KMS DescribeKey).
// Each listens on 127.0.0.1 with a port the OS picks and records what it was sent.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { vi } from 'vitest';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface Reply {
  readonly status?: number;
  readonly type?: string;
  readonly body: string;
}

export interface Loopback {
  readonly url: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

export async function startLoopback(handle: (req: SeenRequest) => Reply | Promise<Reply>): Promise<Loopback> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(seen);
      void Promise.resolve(handle(seen)).then((r) => {
        res.writeHead(r.status ?? 200, { 'content-type': r.type ?? 'application/json' });
        res.end(r.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface FakeCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

/** The ECS / EKS Pod Identity container-credentials answer. */
export function containerCredentialsReply(c: FakeCredentials): Reply {
  return {
    body: JSON.stringify({
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      Token: c.sessionToken,
      Expiration: c.expiration.toISOString(),
    }),
  };
}

const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** STS AssumeRoleWithWebIdentity in awsQuery XML. */
export function webIdentityReply(c: FakeCredentials, roleArn: string): Reply {
  return {
    type: 'text/xml',
    body: `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NS}"><AssumeRoleWithWebIdentityResult>
<Credentials><AccessKeyId>${c.accessKeyId}</AccessKeyId><SecretAccessKey>${c.secretAccessKey}</SecretAccessKey><SessionToken>${c.sessionToken}</SessionToken><Expiration>${c.expiration.toISOString()}</Expiration></Credentials>
<AssumedRoleUser><Arn>${roleArn.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/')}/irsa</Arn><AssumedRoleId>AROAEXAMPLE:irsa</AssumedRoleId></AssumedRoleUser>
<SubjectFromWebIdentityToken>system:serviceaccount:credvend:credvend</SubjectFromWebIdentityToken>
</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000001</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
  };
}

/** STS GetCallerIdentity in awsQuery XML. */
export function callerIdentityReply(arn: string, account: string): Reply {
  return {
    type: 'text/xml',
    body: `<GetCallerIdentityResponse xmlns="${STS_NS}"><GetCallerIdentityResult><Arn>${arn}</Arn><UserId>AIDAEXAMPLE</UserId><Account>${account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000002</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
  };
}

/** KMS DescribeKey (awsJson1_1). */
export function describeKeyReply(meta: { arn: string; state?: string; spec?: string; usage?: string }): Reply {
  return {
    type: 'application/x-amz-json-1.1',
    body: JSON.stringify({
      KeyMetadata: {
        KeyId: meta.arn.split('/').pop(),
        Arn: meta.arn,
        KeyState: meta.state ?? 'Enabled',
        Enabled: (meta.state ?? 'Enabled') === 'Enabled',
        KeySpec: meta.spec ?? 'SYMMETRIC_DEFAULT',
        KeyUsage: meta.usage ?? 'ENCRYPT_DECRYPT',
      },
    }),
  };
}

/** Form fields of an awsQuery request body. */
export function queryParams(body: string): URLSearchParams {
  return new URLSearchParams(body);
}

/**
 * Nothing from the machine running the tests may answer the SDK's credential chain before the
 * loopback endpoint does (it tries the environment, the shared files, IMDS): every variable it
 * reads is unset (vi.stubEnv, undone by vi.unstubAllEnvs) and the files point nowhere.
 */
export function isolateAwsCredentialChain(): void {
  for (const name of [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_CREDENTIAL_EXPIRATION',
    'AWS_PROFILE',
    'AWS_DEFAULT_PROFILE',
    'AWS_ROLE_ARN',
    'AWS_ROLE_SESSION_NAME',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_CONTAINER_AUTHORIZATION_TOKEN',
    'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
    'AWS_ENDPOINT_URL',
    'AWS_ENDPOINT_URL_STS',
  ])
    vi.stubEnv(name, undefined);
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/credvend-test-credentials');
  vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/credvend-test-config');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
}
