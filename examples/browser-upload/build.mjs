#!/usr/bin/env node
// Bundles the page (AWS SDK S3 client + lib-storage included) with esbuild into one folder:
// index.html + app.js. No framework, no dev server needed beyond a static file server.
//
//   node examples/browser-upload/build.mjs                     -> examples/browser-upload/dist/
//   node examples/browser-upload/build.mjs --outdir /tmp/page
//   node examples/browser-upload/build.mjs --serve --port 8081 (serves on 127.0.0.1 only)
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));

/** @returns {import('esbuild').BuildOptions} */
function options(outdir) {
  return {
    entryPoints: [join(HERE, 'src/main.ts')],
    outfile: join(outdir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome120', 'firefox120', 'safari17'],
    minify: true,
    sourcemap: true,
    // The SDK picks its browser implementations (fetch, Web Crypto) through package.json "browser" fields.
    mainFields: ['browser', 'module', 'main'],
    conditions: ['browser'],
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
    legalComments: 'linked',
  };
}

/** Builds the page into `outdir` and returns the path of its index.html. */
export async function buildBrowserUpload(outdir) {
  mkdirSync(outdir, { recursive: true });
  await esbuild.build(options(outdir));
  copyFileSync(join(HERE, 'index.html'), join(outdir, 'index.html'));
  return join(outdir, 'index.html');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { outdir: { type: 'string' }, serve: { type: 'boolean' }, port: { type: 'string' } },
  });
  const outdir = resolve(values.outdir ?? join(HERE, 'dist'));
  const index = await buildBrowserUpload(outdir);
  process.stderr.write(`built ${index}\n`);
  if (values.serve) {
    const ctx = await esbuild.context(options(outdir));
    const { port } = await ctx.serve({ host: '127.0.0.1', port: Number(values.port ?? 8081), servedir: outdir });
    process.stderr.write(
      `serving http://127.0.0.1:${port}/ (add this origin to CREDVEND_CORS_ORIGINS and the bucket's CORS rule)\n`,
    );
  }
}
