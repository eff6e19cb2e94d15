// The one STS call the bench's yardsticks make (F: scripts/bench/sdk-loop.mjs, P:
// scripts/bench/baseline.mjs): one client per process with credvend's client settings
// (keep-alive, cached middleware stack), so a ratio measures credvend's own work.
import { Agent } from 'node:http';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const sts = new STSClient({
  region: 'us-east-1',
  endpoint: process.env.CREDVEND_STS_ENDPOINT,
  credentials: { accessKeyId: 'ASIABENCHBASE', secretAccessKey: 'bench', sessionToken: 'bench' },
  maxAttempts: 3,
  cacheMiddleware: true,
  requestHandler: new NodeHttpHandler({
    httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }),
    connectionTimeout: 1000,
    requestTimeout: 3000,
  }),
});
const policy = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['s3:PutObject'], Resource: 'arn:aws:s3:::bench-bucket/uploads/bench/a.txt' }],
});

/** AssumeRole with a one-object inline policy, as credvend sends for the bench profile. */
export const assumeRole = () =>
  sts.send(
    new AssumeRoleCommand({
      RoleArn: 'arn:aws:iam::123456789012:role/bench',
      RoleSessionName: 'bench',
      DurationSeconds: 900,
      Policy: policy,
    }),
  );
