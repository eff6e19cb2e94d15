// The benchmark's yardstick: a minimal Fastify route making the same STS AssumeRole call with the
// same client settings (keep-alive, one client per process), no auth, no policy, no logging.
import Fastify from 'fastify';
import { assumeRole } from './sdk-call.mjs';

const app = Fastify();
app.post('/v1/credentials', async () => {
  const out = await assumeRole();
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
