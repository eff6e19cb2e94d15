#!/usr/bin/env node
// `npm run demo`: credvend end to end on this machine, in about a minute.
//
//  1. installs Ceph RGW if missing (scripts/rgw/install.sh: Debian packages, needs root or sudo)
//     and builds dist/ if it is missing or older than src/;
//  2. starts a throwaway RGW (real S3 + STS, loopback only) and credvend against it, with a
//     DEVELOPMENT token issuer (an HMAC secret: credvend warns loudly about it, as it should);
//  3. mints a token and prints the commands to try: a curl request for upload credentials, and an
//     AWS CLI upload that takes its credentials from `?format=env`;
//  4. proves they work by running them: the curl request, the `eval "$(curl ...)"` step, an SDK
//     upload with the resulting variables (and the AWS CLI one when `aws` is installed), a write
//     to another key that S3 refuses, and a download with download credentials;
//  5. keeps serving until Ctrl-C, then stops credvend and RGW and deletes the temp folder.
//     With --once it stops right after the proof (exit 0 when every step worked).
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // Node 20 is supported; the SDK (@aws-sdk/core) warns about 2027 unless this is exactly "true"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ONCE = process.argv.includes('--once');
const ISSUER = 'https://demo.credvend.local';
const AUDIENCE = 'credvend-demo';
const SUBJECT = 'demo-user';
const PROFILE = 'demo';
const BUCKET = 'vend-bucket';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write('usage: node scripts/demo.mjs [--once]\n  --once  run the proof and exit (no serving)\n');
  process.exit(0);
}

const t0 = Date.now();
const secs = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
const say = (s = '') => process.stdout.write(`${s}\n`);
const step = (s) => say(`\x1b[1m==> ${s}\x1b[0m`);
const ok = (s) => say(`    \x1b[32mOK\x1b[0m   ${s}`);
const bad = (s) => say(`    \x1b[31mFAIL\x1b[0m ${s}`);

let dir;
let rgwBase;
let credvend;
let cleaningUp;

function cleanup() {
  cleaningUp ??= (async () => {
    if (credvend && credvend.exitCode === null && credvend.signalCode === null) {
      const exited = new Promise((r) => credvend.once('exit', r));
      credvend.kill('SIGTERM');
      const timer = setTimeout(() => credvend.kill('SIGKILL'), 12_000);
      await exited;
      clearTimeout(timer);
    }
    if (rgwBase && existsSync(rgwBase)) {
      await run('bash', [join(ROOT, 'scripts/rgw/stop.sh')], {
        env: { ...process.env, RGW_BASE: rgwBase, RGW_CLEAN: '1' },
      });
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  })();
  return cleaningUp;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    say(`\n${sig}: stopping credvend and RGW...`);
    void cleanup().then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

try {
  const failures = await main();
  await cleanup();
  say(failures === 0 ? `demo finished in ${secs()}` : `demo: ${failures} step(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
} catch (err) {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  await cleanup();
  process.exit(1);
}

async function main() {
  // ---- 1. tools and build ------------------------------------------------------------------
  step('Ceph RGW tools (scripts/rgw/install.sh)');
  const install = await run('bash', [join(ROOT, 'scripts/rgw/install.sh')], { inherit: true });
  if (install.code !== 0)
    throw new Error('installing Ceph RGW failed; see above (Debian/Ubuntu with root or sudo needed)');
  if (!existsSync(join(ROOT, 'node_modules/@aws-sdk/client-s3')))
    throw new Error('node_modules is incomplete: run `npm install` first');
  if (buildIsStale()) {
    step('building dist/ (npm run build)');
    const b = await run('npm', ['run', 'build', '--silent'], { inherit: true });
    if (b.code !== 0) throw new Error('npm run build failed');
  }
  const { S3Client, PutObjectCommand, GetObjectCommand } = await import('@aws-sdk/client-s3');

  // ---- 2. RGW and credvend -----------------------------------------------------------------
  dir = mkdtempSync(join(tmpdir(), 'credvend-demo-'));
  rgwBase = join(dir, 'rgw');
  step('starting Ceph RGW (S3 + STS on 127.0.0.1, in-memory)');
  const r = await run('bash', [join(ROOT, 'scripts/rgw/start.sh')], {
    env: { ...process.env, RGW_BASE: rgwBase, RGW_BUCKETS: BUCKET },
  });
  if (r.code !== 0) throw new Error(`scripts/rgw/start.sh failed:\n${r.stderr.slice(-2500)}`);
  const rgw = Object.fromEntries(
    readFileSync(join(rgwBase, 'rgw.env'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  ok(`RGW at ${rgw.RGW_ENDPOINT}, role ${rgw.RGW_ROLE_ARN}, bucket ${BUCKET} (${secs()})`);

  const hmacSecret = randomBytes(36).toString('base64url');
  const configFile = join(dir, 'profiles.yaml');
  writeFileSync(
    configFile,
    `# credvend demo profiles (generated by scripts/demo.mjs)
issuers:
  - issuer: ${ISSUER}
    audiences: [${AUDIENCE}]
    # Development only: an HMAC secret lets this script mint tokens. Production issuers use
    # jwksUri / discovery (GitLab CI, GitHub Actions OIDC, your IdP) or a PEM public key.
    hmacSecret: ${hmacSecret}
profiles:
  ${PROFILE}:
    description: every subject may upload and download its own objects under uploads/<sub>/
    roleArn: ${rgw.RGW_ROLE_ARN}
    bucket: ${BUCKET}
    region: ${rgw.RGW_REGION}
    prefix: uploads/{sub}/
    operations: [upload, download]
    maxKeys: 10
    match:
      iss: ${ISSUER}
      aud: ${AUDIENCE}
`,
  );
  const port = ONCE ? await freePort() : (await portFree(8080)) ? 8080 : await freePort();
  const adminPort = await freePort();
  const logFile = join(dir, 'credvend.log');
  const auditFile = join(dir, 'audit.log');
  step('starting credvend (node dist/server.js)');
  const fd = openSync(logFile, 'a');
  credvend = spawn(process.execPath, [join(ROOT, 'dist/server.js')], {
    cwd: dir,
    stdio: ['ignore', fd, fd],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_EC2_METADATA_DISABLED: 'true',
      CREDVEND_CONFIG_FILE: configFile,
      CREDVEND_HOST: '127.0.0.1',
      CREDVEND_PORT: String(port),
      CREDVEND_ADMIN_HOST: '127.0.0.1',
      CREDVEND_ADMIN_PORT: String(adminPort),
      CREDVEND_STS_ENDPOINT: rgw.RGW_ENDPOINT,
      CREDVEND_S3_COMPATIBLE: 'true',
      // RGW matches `${*}` literally: refuse wildcard keys rather than vend unusable credentials.
      CREDVEND_WILDCARD_KEYS: 'reject',
      CREDVEND_AUDIT_LOG: auditFile,
      AWS_REGION: rgw.RGW_REGION,
      AWS_ACCESS_KEY_ID: rgw.RGW_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: rgw.RGW_SECRET_KEY,
    },
  });
  closeSync(fd);
  const api = `http://127.0.0.1:${port}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  for (let i = 0; ; i += 1) {
    if (credvend.exitCode !== null) throw new Error(`credvend exited with ${credvend.exitCode}:\n${tailOf(logFile)}`);
    const status = await fetch(`${adminUrl}/readyz`).then(
      (res) => res.status,
      () => 0,
    );
    if (status === 200) break;
    if (i > 300) throw new Error(`credvend not ready after 30 s:\n${tailOf(logFile)}`);
    await sleep(100);
  }
  ok(`credvend at ${api} (admin ${adminUrl}) (${secs()})`);
  await sleep(100);
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (/HMAC|static user keys/.test(line)) say(`    \x1b[33mcredvend warns\x1b[0m ${safeMsg(line)}`);
  }

  // ---- 3. the commands to try --------------------------------------------------------------
  const now = Math.floor(Date.now() / 1000);
  const token = hs256({ iss: ISSUER, aud: AUDIENCE, sub: SUBJECT, iat: now, exp: now + 3600 }, hmacSecret);
  const body = JSON.stringify({ profile: PROFILE, operation: 'upload', keys: ['hello.txt'] });
  const curlJson = `curl -s -X POST ${api}/v1/credentials \\
     -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
     -d '${body}'`;
  const evalEnv = `eval "$(curl -s -X POST '${api}/v1/credentials?format=env' \\
     -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
     -d '${body}')"`;
  const awsCp = `AWS_REQUEST_CHECKSUM_CALCULATION=when_required \\
     aws --endpoint-url ${rgw.RGW_ENDPOINT} s3 cp hello.txt "s3://$CREDVEND_BUCKET/$CREDVEND_KEY"`;
  say();
  say('Try it (in another terminal while this one serves):');
  say();
  say(`  # a token from the development issuer (sub=${SUBJECT}, valid 1 hour)`);
  say(`  export TOKEN='${token}'`);
  say();
  say('  # (a) upload credentials for exactly one key, as JSON');
  say(`  ${curlJson}`);
  say();
  say('  # (b) the same as shell variables, then an upload with the AWS CLI');
  say(`  ${evalEnv}`);
  say(`  echo 'hello from credvend' > hello.txt`);
  say(`  ${awsCp}`);
  say();

  // ---- 4. the proof ------------------------------------------------------------------------
  step('running those commands');
  let failures = 0;
  const shellEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TOKEN: token,
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
  };
  const a = await run('bash', ['-c', curlJson], { env: shellEnv });
  let vended;
  try {
    vended = JSON.parse(a.stdout);
  } catch {
    vended = {};
  }
  if (vended.accessKeyId) {
    ok(
      `(a) ${vended.keys?.join(', ')} in ${vended.bucket}: accessKeyId ${vended.accessKeyId}, secret ${mask(vended.secretAccessKey)}, expires ${vended.expiration}`,
    );
  } else {
    failures += 1;
    bad(`(a) curl answered: ${a.stdout.slice(0, 300)}${a.stderr.slice(0, 300)}`);
  }

  const b = await run('bash', ['-c', `set -e\n${evalEnv}\nenv -0`], { env: shellEnv });
  const vars = Object.fromEntries(
    b.stdout
      .split('\0')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const s3For = (credentials) =>
    new S3Client({
      endpoint: rgw.RGW_ENDPOINT,
      region: rgw.RGW_REGION,
      credentials,
      forcePathStyle: true,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  if (!vars.AWS_SESSION_TOKEN) {
    failures += 1;
    bad(`(b) eval "$(curl ...?format=env)" set no AWS_SESSION_TOKEN: ${b.stderr.slice(0, 300)}`);
  } else {
    ok(
      `(b) eval "$(curl ...?format=env)" exported AWS_ACCESS_KEY_ID=${vars.AWS_ACCESS_KEY_ID}, CREDVEND_BUCKET=${vars.CREDVEND_BUCKET}, CREDVEND_KEY=${vars.CREDVEND_KEY}`,
    );
    const s3 = s3For({
      accessKeyId: vars.AWS_ACCESS_KEY_ID,
      secretAccessKey: vars.AWS_SECRET_ACCESS_KEY,
      sessionToken: vars.AWS_SESSION_TOKEN,
    });
    const target = `s3://${vars.CREDVEND_BUCKET}/${vars.CREDVEND_KEY}`;
    try {
      const out = await s3.send(
        new PutObjectCommand({ Bucket: vars.CREDVEND_BUCKET, Key: vars.CREDVEND_KEY, Body: 'hello from credvend\n' }),
      );
      ok(`SDK PutObject ${target} with those variables: ETag ${out.ETag}`);
    } catch (err) {
      failures += 1;
      bad(`SDK PutObject ${target}: ${err.name} ${err.message}`);
    }
    for (const key of [`uploads/${SUBJECT}/other.txt`, 'uploads/someone-else/hello.txt']) {
      try {
        await s3.send(new PutObjectCommand({ Bucket: vars.CREDVEND_BUCKET, Key: key, Body: 'should not land' }));
        failures += 1;
        bad(`SDK PutObject s3://${vars.CREDVEND_BUCKET}/${key} was ALLOWED: the credentials are not scoped`);
      } catch (err) {
        if (err.name === 'AccessDenied')
          ok(`SDK PutObject s3://${vars.CREDVEND_BUCKET}/${key}: AccessDenied, as it must be (not a requested key)`);
        else {
          failures += 1;
          bad(`SDK PutObject s3://${vars.CREDVEND_BUCKET}/${key}: expected AccessDenied, got ${err.name}`);
        }
      }
    }
    if (onPath('aws')) {
      writeFileSync(join(dir, 'hello.txt'), 'hello from credvend via the AWS CLI\n');
      const c = await run('bash', ['-c', `set -e\n${evalEnv}\n${awsCp}`], { env: shellEnv, cwd: dir });
      if (c.code === 0) ok(`(b) aws s3 cp hello.txt ${target}: uploaded`);
      else {
        failures += 1;
        bad(`(b) aws s3 cp: exit ${c.code}: ${(c.stderr || c.stdout).trim().slice(0, 400)}`);
      }
    } else {
      say('    skip (b) with the AWS CLI: `aws` is not installed; the SDK upload above used the same variables');
    }
  }

  const d = await fetch(`${api}/v1/credentials`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ profile: PROFILE, operation: 'download', keys: ['hello.txt'] }),
  }).then((res) => res.json());
  try {
    const s3 = s3For({ accessKeyId: d.accessKeyId, secretAccessKey: d.secretAccessKey, sessionToken: d.sessionToken });
    const out = await s3.send(new GetObjectCommand({ Bucket: d.bucket, Key: d.keys[0] }));
    ok(
      `download credentials: GetObject ${d.keys[0]} -> ${JSON.stringify((await out.Body.transformToString()).trim())}`,
    );
  } catch (err) {
    failures += 1;
    bad(`download credentials: ${err.name ?? ''} ${err.message ?? JSON.stringify(d).slice(0, 300)}`);
  }

  await sleep(200); // the audit log is written asynchronously
  const audit = existsSync(auditFile)
    ? readFileSync(auditFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  const issued = audit.filter((e) => e.event === 'credentials.issued');
  if (issued.length > 0) {
    const last = issued[issued.length - 1];
    ok(
      `audit log: ${audit.length} record(s); last: ${last.event} ${last.operation} ${last.keys?.join(',')} accessKeyId=${last.accessKeyId} session=${last.roleSessionName}`,
    );
  } else {
    failures += 1;
    bad(`audit log ${auditFile} has no credentials.issued record`);
  }

  say();
  say(`Files: profiles ${configFile}`);
  say(`       credvend log ${logFile}, audit ${auditFile}`);
  if (ONCE) return failures;

  say();
  say(`\x1b[1mcredvend is serving at ${api} (metrics: ${adminUrl}/metrics). Ctrl-C stops credvend and RGW.\x1b[0m`);
  await new Promise((res) => credvend.once('exit', res));
  if (!cleaningUp) throw new Error(`credvend exited unexpectedly:\n${tailOf(logFile)}`);
  await cleaningUp;
  return failures;
}

// ---- helpers ---------------------------------------------------------------------------------

function run(cmd, args, opts = {}) {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      stdio: opts.inherit ? ['inherit', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s) => (stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s) => (stderr += s));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

function newestMtime(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...readdirSync(p).map((e) => newestMtime(join(p, e))));
}

function buildIsStale() {
  const server = join(ROOT, 'dist/server.js');
  if (!existsSync(server)) return true;
  const inputs = Math.max(
    newestMtime(join(ROOT, 'src')),
    ...['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => statSync(join(ROOT, f)).mtimeMs),
  );
  return statSync(server).mtimeMs < inputs;
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

function portFree(port) {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/** A compact HS256 JWT, enough for the development issuer. */
function hs256(payload, secret) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(payload)}`;
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`;
}

function safeMsg(line) {
  try {
    return JSON.parse(line).msg;
  } catch {
    return line;
  }
}

function mask(s) {
  return typeof s === 'string' ? `${s.slice(0, 4)}…(${s.length} chars)` : String(s);
}

function onPath(cmd) {
  return (process.env.PATH ?? '').split(':').some((p) => p && existsSync(join(p, cmd)));
}

function tailOf(file) {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-20).join('\n') : '(no log)';
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
