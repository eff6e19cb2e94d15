// The OpenAPI document, generated from the routes' own zod schemas (@fastify/swagger). The app
// serves it at /openapi.json; openapi.yaml in the repository is this document, and a test keeps
// the two equal, so the published contract cannot drift from the code.
import pino from 'pino';
import { buildApp } from './app.js';
import { loadConfig } from './config/load.js';
import { createMetrics } from './metrics/metrics.js';
import { createReadiness } from './readiness.js';

/** Builds the app with a placeholder configuration (no I/O) just to read its document. */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const file = {
    issuers: [
      {
        issuer: 'https://issuer.invalid',
        audiences: ['credvend'],
        hmacSecret: 'placeholder-secret-placeholder-secret',
      },
    ],
    profiles: {
      example: {
        roleArn: 'arn:aws:iam::123456789012:role/example',
        bucket: 'example-bucket',
        region: 'us-east-1',
        match: {},
      },
    },
  };
  const config = loadConfig({ CREDVEND_CONFIG_FILE: 'openapi.json' }, () => JSON.stringify(file));
  const unused = async (): Promise<never> => {
    throw new Error('not used');
  };
  const app = await buildApp({
    config,
    sts: { assumeRole: unused, serviceIdentity: unused },
    audit: { record: async () => undefined, writable: () => true, close: async () => undefined },
    metrics: createMetrics({ version: 'openapi', defaultMetrics: false }),
    logger: pino({ level: 'silent' }),
    readiness: createReadiness('ready'),
    now: Date.now,
  });
  await app.ready();
  const doc = app.swagger() as unknown as Record<string, unknown>;
  await app.close();
  return JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
}
