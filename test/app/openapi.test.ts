// openapi.yaml is the published contract: it must equal what the routes describe.
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
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
    const doc = (await openApiDocument()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz',
      '/readyz',
      '/v1/container-credentials/{profile}',
      '/v1/credentials',
      '/v1/presigned',
      '/v1/profiles',
    ]);
    expect(Object.keys(doc.paths['/v1/credentials']!.post!.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '422', '502', '503', '504']),
    );
    expect(Object.keys(doc.paths['/v1/presigned']!.post!.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '502', '503', '504']),
    );
  });

  it('is served at /openapi.json without authentication', async () => {
    const h = await buildHarness();
    const res = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.json().openapi).toBe('3.1.0');
    await h.close();
  });

  it('is a valid OpenAPI 3.1 document (openapi.yaml and the served /openapi.json), by @seriousme/openapi-schema-validator', async () => {
    const h = await buildHarness();
    const served = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<Record<string, unknown>>();
    await h.close();
    const committed = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as Record<
      string,
      unknown
    >;
    for (const [name, doc] of [
      ['openapi.yaml', committed],
      ['/openapi.json', served],
    ] as const) {
      const validator = new Validator();
      const res = await validator.validate(structuredClone(doc));
      expect(res.errors, `${name}: ${JSON.stringify(res.errors, null, 1)?.slice(0, 2000)}`).toBeUndefined();
      expect(res.valid, name).toBe(true);
      expect(validator.version, name).toBe('3.1');
    }
    // The validator does refuse what is not OpenAPI 3.1: a response without its description.
    const broken = structuredClone(committed) as {
      paths: Record<string, Record<string, { responses: Record<string, Record<string, unknown>> }>>;
    };
    delete broken.paths['/v1/credentials']!.post!.responses['200']!.description;
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });
});
