// Real-browser harness: Debian's Chromium (/usr/bin/chromium, installed by
// scripts/install-test-deps.sh) driven by playwright-core, which never downloads a browser of its
// own. Pages are served from their own loopback origin, next to the e2e harness's credvend and RGW.
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { PutBucketCorsCommand } from '@aws-sdk/client-s3';
import { chromium, type BrowserContext } from 'playwright-core';
import { s3Client, type Rgw } from './e2e.js';

export const CHROMIUM = '/usr/bin/chromium';

// Without the background-networking flags Chromium keeps reaching for Google's hosts, which this
// machine's closed network refuses, many connections at a time.
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox', // tests run as root, where Chromium's sandbox cannot start
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  readonly context: BrowserContext;
  readonly userDataDir: string;
  close(): Promise<void>;
}

/** Chromium with a fresh, empty profile (--user-data-dir), removed again on close. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run scripts/install-test-deps.sh (Debian package chromium)`);
  const userDataDir = mkdtempSync(join(tmpdir(), 'cv-chromium-'));
  // launchPersistentContext is how playwright takes --user-data-dir; it refuses the flag in args.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    acceptDownloads: true,
    viewport: { width: 900, height: 900 },
    timeout: 60_000,
  });
  return {
    context,
    userDataDir,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export interface StaticSite {
  /** e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** Serves `dir` read-only on 127.0.0.1 and a port of its own: one more browser origin. */
export async function serveStatic(dir: string): Promise<StaticSite> {
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path.endsWith('/') ? `${path}index.html` : path));
    if (
      (req.method !== 'GET' && req.method !== 'HEAD') ||
      !file.startsWith(dir + sep) ||
      !existsSync(file) ||
      !statSync(file).isFile()
    ) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('static server did not bind');
  return {
    origin: `http://127.0.0.1:${addr.port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * The bucket CORS rule a browser upload needs (README "For browsers"): ETag must be exposed, or
 * lib-storage cannot complete a multipart upload ("Part 1 is missing ETag").
 */
export async function allowBucketCors(rgw: Rgw, bucket: string, origins: string[]): Promise<void> {
  const admin = s3Client(rgw, { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey });
  await admin.send(
    new PutBucketCorsCommand({
      Bucket: bucket,
      CORSConfiguration: {
        CORSRules: [
          {
            AllowedOrigins: origins,
            AllowedMethods: ['GET', 'PUT', 'POST', 'HEAD', 'DELETE'],
            AllowedHeaders: ['*'],
            ExposeHeaders: ['ETag'],
            MaxAgeSeconds: 600,
          },
        ],
      },
    }),
  );
  admin.destroy();
}

/** The RGW tenant of the suite's buckets: the account id in its role ARN. */
export function rgwTenant(rgw: Rgw): string {
  const m = /^arn:aws:iam::(\d{12}):role\//.exec(rgw.roleArn);
  if (!m?.[1]) throw new Error(`no account id in ${rgw.roleArn}`);
  return m[1];
}
