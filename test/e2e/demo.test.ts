// The README's first command is `npm run demo`; this keeps it working. `--once` runs the whole
// flow (RGW, credvend, token, curl, eval + upload, denied write, download) and exits.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, ensureBuilt, ROOT, run } from '../helpers/e2e.js';

describe('npm run demo', () => {
  beforeAll(async () => {
    await ensureBuilt();
  });

  it('node scripts/demo.mjs --once proves an upload and a denied write, cleans up and exits 0', async () => {
    const started = Date.now();
    const out = await run(process.execPath, [join(ROOT, 'scripts/demo.mjs'), '--once'], {
      env: cleanEnv(),
      timeoutMs: 110_000,
    });
    const text = out.stdout.replace(/\x1b\[[0-9;]*m/g, '');
    expect(out.code, `${text}\n${out.stderr}`).toBe(0);
    expect(text).toMatch(/curl -s -X POST http:\/\/127\.0\.0\.1:\d+\/v1\/credentials/);
    expect(text).toMatch(/eval "\$\(curl -s -X POST 'http:\/\/127\.0\.0\.1:\d+\/v1\/credentials\?format=env'/);
    expect(text).toMatch(/aws --endpoint-url http:\/\/127\.0\.0\.1:\d+ s3 cp hello\.txt/);
    expect(text).toMatch(/OK +SDK PutObject s3:\/\/vend-bucket\/uploads\/demo-user\/hello\.txt/);
    expect(text).toMatch(/OK +SDK PutObject s3:\/\/vend-bucket\/uploads\/demo-user\/other\.txt: AccessDenied/);
    expect(text).toMatch(/OK +download credentials: GetObject uploads\/demo-user\/hello\.txt/);
    expect(text).not.toMatch(/FAIL/);
    // The secret key is never printed in full.
    expect(text).not.toMatch(/secret [A-Za-z0-9/+]{20,}/);
    // Everything it started is gone: the temp folder (RGW's data included) was removed.
    const folder = /credvend log (\S+)\/credvend\.log/.exec(text)?.[1];
    expect(folder).toBeDefined();
    expect(existsSync(folder!)).toBe(false);
    console.info(`e2e: demo --once took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
