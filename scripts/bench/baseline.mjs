// The benchmark's yardstick: a minimal Fastify route making the same STS AssumeRole call with the
// same client settings (keep-alive, one client per process), no auth, no policy, no logging.
import Fastify from 'fastify';
import { Agent } from 'node:http';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const sts = new STSClient({
  region: 'us-east-1',
  endpoint: process.env.CREDVEND_STS_ENDPOINT,
  credentials: { accessKeyId: 'ASIABENCHBASE', secretAccessKey: 'bench', sessionToken: 'bench' },
  maxAttempts: 3,
  cacheMiddleware: true, // the same client settings as credvend's, so the ratio measures credvend's own work
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
const app = Fastify();
app.post('/v1/credentials', async () => {
  const out = await sts.send(
    new AssumeRoleCommand({
      RoleArn: 'arn:aws:iam::123456789012:role/bench',
      RoleSessionName: 'bench',
      DurationSeconds: 900,
      Policy: policy,
    }),
  );
  const c = out.Credentials;
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    expiration: c.Expiration,
  };
});
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
console.log(`baseline ready ${process.env.PORT}`);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0));
