// The browser example (examples/browser-upload), in a real Chromium, against the built service and
// a real S3 + STS (Ceph RGW) on loopback. Three origins: credvend, RGW, and the page's own; a
// fourth serves the same page from an origin credvend does not allow.
//
// Every check that matters is made by the real parties: the browser enforces CORS, RGW enforces
// the session policy, and the bytes are read back with RGW's admin user.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBrowserUpload } from '../../examples/browser-upload/build.mjs';
import {
  allowBucketCors,
  launchChromium,
  rgwTenant,
  serveStatic,
  type Browser,
  type StaticSite,
} from '../helpers/browser.js';
import {
  BUCKET,
  ensureBuilt,
  findSecrets,
  removeTempRoot,
  ROOT,
  s3Client,
  secrets,
  startIssuer,
  startRgw,
  tempRoot,
  type Issuer,
  type Rgw,
} from '../helpers/e2e.js';
import { startService, type Service } from '../helpers/service-process.js';

const SCREENSHOT = join(ROOT, '.tmp/browser/browser-upload.png');

let root: string;
let rgw: Rgw;
let issuer: Issuer;
let svc: Service;
let site: StaticSite; // allowed by credvend and by the bucket's CORS rule
let stranger: StaticSite; // the same page, from an origin nobody allowed
let browser: Browser;
let admin: S3Client;
let alice: string;
const consoleLines: string[] = [];

beforeAll(async () => {
  root = tempRoot('cv-br-');
  const pageDir = join(root, 'page');
  const started = await Promise.allSettled([
    ensureBuilt(),
    startRgw(root, [BUCKET]).then((r) => (rgw = r)),
    startIssuer().then((i) => (issuer = i)),
    buildBrowserUpload(pageDir),
    launchChromium().then((b) => (browser = b)),
  ]);
  for (const r of started) if (r.status === 'rejected') throw r.reason;
  [site, stranger] = await Promise.all([serveStatic(pageDir), serveStatic(pageDir)]);
  svc = await startService({ dir: root, rgw, issuer, name: 'svc', env: { CREDVEND_CORS_ORIGINS: site.origin } });
  await allowBucketCors(rgw, BUCKET, [site.origin]);
  admin = s3Client(rgw, { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey });
  alice = await issuer.sign({ sub: 'alice' }, { expiresIn: '30m' });
  browser.context.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
});

afterAll(async () => {
  await Promise.allSettled([browser?.close(), site?.close(), stranger?.close(), svc?.stop()]);
  await Promise.allSettled([rgw?.stop(), issuer?.close()]);
  if (root) removeTempRoot(root);
});

// ---------------------------------------------------------------------------------------------

function pageUrl(origin: string, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({
    credvend: svc.url,
    profile: 'uploads',
    s3Endpoint: rgw.endpoint,
    tenant: rgwTenant(rgw),
    ...extra,
  });
  return `${origin}/index.html?${q.toString()}`;
}

async function openPage(origin = site.origin, extra: Record<string, string> = {}): Promise<Page> {
  const page = await browser.context.newPage();
  await page.goto(pageUrl(origin, extra));
  await expect.poll(() => page.textContent('#status')).toBe('ready');
  await page.fill('#token', alice);
  return page;
}

function localFile(name: string, bytes: Buffer): string {
  const dir = join(root, 'files');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), bytes);
  return join(dir, name);
}

/** Picks the file, clicks Upload, waits for the outcome; returns the status line and its class. */
async function upload(
  page: Page,
  file: string,
  opts: { key?: string; writeKey?: string } = {},
): Promise<{ kind: string; text: string }> {
  await page.setInputFiles('#file', file);
  if (opts.key !== undefined) await page.fill('#key', opts.key);
  if (opts.writeKey !== undefined) {
    await page.click('details summary'); // the experiments are folded away, as a user finds them
    await page.fill('#write-key', opts.writeKey);
  }
  await page.click('#upload');
  await page.waitForSelector('#status.ok, #status.error', { timeout: 120_000 });
  return { kind: (await page.getAttribute('#status', 'class')) ?? '', text: (await page.textContent('#status')) ?? '' };
}

async function objectBytes(key: string): Promise<Buffer> {
  const r = await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------

describe('browser upload example, in Chromium', () => {
  it('a small file goes up in one PUT and lands with the right bytes under the granted key', async () => {
    const bytes = randomBytes(100 * 1024);
    const page = await openPage();
    const r = await upload(page, localFile('hello.bin', bytes));
    expect(r, r.text).toMatchObject({ kind: 'ok', text: expect.stringContaining('uploaded hello.bin') });
    expect(await page.textContent('#object-key')).toBe('uploads/alice/hello.bin');
    expect(await page.textContent('#object-sha')).toBe(sha256(bytes));
    expect(await page.textContent('#grants')).toMatch(/^1 /);
    expect(sha256(await objectBytes('uploads/alice/hello.bin'))).toBe(sha256(bytes));
    await page.close();
  });

  it('an 11 MiB file goes up in parts, outlives its first credentials (renewed for the same key), and downloads back intact', async () => {
    const bytes = randomBytes(11 * 1024 * 1024);
    // Each finished part moves the credentials' clock 400 s on: after two of the three parts a
    // 900 s grant has 100 s left, under the 120 s margin, so the page asks credvend again before
    // it completes the upload. Signing keeps the wall clock, as it must for RGW.
    const page = await openPage(site.origin, { clockStepPerPartSeconds: '400' });
    const before = svc.auditRecords().length;
    const r = await upload(page, localFile('big.bin', bytes), { key: 'big.bin' });
    expect(r, r.text).toMatchObject({ kind: 'ok' });
    expect(await page.getAttribute('#progress', 'value')).toBe('100');
    expect(await page.textContent('#grants')).toMatch(/^2 \(renewed 1/);

    // The object: every byte, and assembled from three parts (S3's multipart ETag ends in -3).
    expect(sha256(await objectBytes('uploads/alice/big.bin'))).toBe(sha256(bytes));
    const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'uploads/alice/big.bin' }));
    expect(head.ETag).toMatch(/-3"$/);
    // credvend was asked twice for the same key, and issued two distinct sessions.
    const issued = svc
      .auditRecords()
      .slice(before)
      .filter((a) => a.event === 'credentials.issued');
    expect(issued.map((a) => a.keys)).toEqual([['uploads/alice/big.bin'], ['uploads/alice/big.bin']]);
    expect(new Set(issued.map((a) => a.accessKeyId)).size).toBe(2);

    // Download it back with download credentials: the page's checksum and the saved file.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    await page.waitForSelector('#status.ok:has-text("downloaded")');
    const saved = readFileSync(await download.path());
    expect(saved.length).toBe(bytes.length);
    expect(sha256(saved)).toBe(sha256(bytes));
    expect(await page.textContent('#download-result')).toContain(sha256(bytes));
    expect(
      svc
        .auditRecords()
        .slice(before)
        .filter((a) => a.event === 'credentials.issued' && a.operation === 'download'),
    ).toHaveLength(1);

    mkdirSync(join(ROOT, '.tmp/browser'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.close();
  });

  it("a key the grant does not cover: S3's denial is shown, and nothing is written", async () => {
    const page = await openPage();
    const r = await upload(page, localFile('steal.txt', Buffer.from('not yours')), {
      writeKey: 'uploads/bob/steal.txt',
    });
    expect(r.kind).toBe('error');
    expect(r.text).toMatch(/^S3 refused the request: AccessDenied \(HTTP 403\)/);
    await expect(
      admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'uploads/bob/steal.txt' })),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    await page.close();
  });

  it("a key credvend refuses: credvend's problem+json detail and code are shown", async () => {
    const page = await openPage();
    const r = await upload(page, localFile('dots.txt', Buffer.from('x')), { key: '../bob/dots.txt' });
    expect(r.kind).toBe('error');
    expect(r.text).toMatch(/^credvend refused: .+ \[CV_INVALID_KEY, HTTP 400\] \(request [\w-]+\)$/);
    await page.close();
  });

  it('an origin not in CREDVEND_CORS_ORIGINS is refused by the browser: no credentials reach the page', async () => {
    const before = svc.auditRecords().length;
    const seen = consoleLines.length;
    const page = await openPage(stranger.origin);
    const r = await upload(page, localFile('cors.txt', Buffer.from('from a stranger')));
    expect(r.kind).toBe('error');
    expect(r.text).toContain('credvend could not be reached');
    expect(consoleLines.slice(seen).join('\n')).toMatch(
      new RegExp(`from origin '${stranger.origin}' has been blocked by CORS policy`),
    );
    // The preflight failed, so the POST was never sent: no decision was made, none audited.
    expect(svc.auditRecords().length).toBe(before);
    await page.close();
  });

  it('no token or vended secret appears in the page console or in credvend logs', async () => {
    await svc.stop();
    expect(findSecrets([svc.stdoutFile, svc.stderrFile, svc.auditFile])).toEqual([]);
    const printed = consoleLines.join('\n');
    for (const s of secrets) expect(printed.includes(s)).toBe(false);
  });
});
