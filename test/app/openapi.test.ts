// openapi.yaml is the published contract: it must equal what the routes describe.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../src/openapi.js';
import { buildHarness } from '../helpers/app.js';

describe('OpenAPI document', () => {
  it('openapi.yaml equals the document generated from the routes (run `npm run openapi` after changing a route)', async () => {
    const committed = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as unknown;
    expect(committed).toEqual(await openApiDocument());
  });

  it('documents every API route, with problem+json errors on the credential routes', async () => {
    const doc = (await openApiDocument()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(Object.keys(doc.paths).sort()).toEqual(['/healthz', '/readyz', '/v1/container-credentials/{profile}', '/v1/credentials', '/v1/presigned', '/v1/profiles']);
    expect(Object.keys(doc.paths['/v1/credentials']!.post!.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '422', '502', '503', '504']));
    expect(Object.keys(doc.paths['/v1/presigned']!.post!.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '502', '503', '504']));
  });

  it('is served at /openapi.json without authentication', async () => {
    const h = await buildHarness();
    const res = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.json().openapi).toBe('3.1.0');
    await h.close();
  });
});
