// npm run bench: credvend against its yardsticks, all against a loopback STS stub, measured with
// autocannon, in interleaved rounds so that the machine's drift hits every side of a ratio alike:
//   F  a bare SDK AssumeRole loop (no HTTP server): the ceiling for anything built on the SDK
//   P  a minimal Fastify route making the same STS call with the same client settings
//   S  credvend, with a reused token (browsers, credential_process) and a new token per request (CI)
//   S+reuse       credvend, repeated identical requests on a profile with grant reuse on
//   S+presigned   credvend, presigned URLs from a cached signing session
// Each measured process gets core 0 (taskset, when available); the stub and the load generator
// share core 1. The last line is one JSON object with the ratios, for comparing runs.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';

const DURATION = Number(process.env.BENCH_SECONDS || 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 7);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS || 5);
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const pin = (core, cmd, args) => (hasTaskset ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args]);
const children = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

function start(core, script, env, readyText, nodeArgs = []) {
  const [cmd, args] = pin(core, process.execPath, [...nodeArgs, script]);
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start`)), 20_000);
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}`)));
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes(readyText)) {
        clearTimeout(timer);
        child.stdout.resume();
        child.stdout.removeAllListeners('data');
        child.stdout.on('data', () => {});
        resolve(child);
      }
    });
  });
}
const stop = (child) =>
  new Promise((r) => {
    child.removeAllListeners('exit');
    child.on('exit', r);
    child.kill('SIGTERM');
  });

// CPU time (user + system) a process has used, in microseconds, from /proc: CPU per request is
// steadier than requests/s when something else shares the machine.
function cpuMicros(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * (1e6 / 100); // utime, stime in clock ticks (100 Hz)
  } catch {
    return NaN;
  }
}

/** Resident set size of a process, in MB (peak, VmHWM). */
function rssOf(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : NaN;
  } catch {
    return NaN;
  }
}

// tokens: one token (a browser or credential_process reusing its ID token) or a pool of
// distinct tokens rotated per request (CI jobs, each with its own token: no verification cache hit).
const warmed = new Set();
async function load(url, tokens, pid, body, connections = CONNECTIONS) {
  let next = 0;
  const opts = {
    url,
    method: 'POST',
    connections,
    pipelining: 1,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[0]}` },
    body: JSON.stringify(body),
    ...(tokens.length > 1
      ? {
          requests: [
            {
              setupRequest: (req) => ({
                ...req,
                headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` },
              }),
            },
          ],
        }
      : {}),
  };
  if (!warmed.has(url + opts.body + connections)) {
    warmed.add(url + opts.body + connections);
    await autocannon({ ...opts, duration: WARMUP }); // warm-up: JIT, keep-alive sockets, caches
  }
  const cpu0 = cpuMicros(pid);
  const r = await autocannon({ ...opts, duration: DURATION });
  const cpu = cpuMicros(pid) - cpu0;
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, cpuUsPerRequest: cpu / r.requests.total };
}

console.log('building...');
if (!process.env.BENCH_NO_BUILD && spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' }).status !== 0)
  process.exit(1);
const startFlags = JSON.parse(readFileSync('package.json', 'utf8'))
  .scripts.start.split(' ')
  .filter((arg) => arg.startsWith('--'));
const dir = mkdtempSync(join(tmpdir(), 'credvend-bench-'));
const stubPort = await freePort();
await start(1, 'scripts/bench/sts-stub.mjs', { STUB_PORT: String(stubPort) }, 'sts-stub ready');
const stsEndpoint = `http://127.0.0.1:${stubPort}`;

const { publicKey, privateKey } = await generateKeyPair('RS256');
const issuer = 'https://bench.issuer.local';
const profile = {
  roleArn: 'arn:aws:iam::123456789012:role/bench',
  bucket: 'bench-bucket',
  region: 'us-east-1',
  prefix: 'uploads/{sub}/',
  match: { iss: issuer },
};
writeFileSync(
  join(dir, 'profiles.json'),
  JSON.stringify({
    issuers: [{ issuer, audiences: ['credvend'], publicKey: await exportSPKI(publicKey), algorithms: ['RS256'] }],
    profiles: {
      bench: profile,
      benchReuse: { ...profile, reuse: { minRemainingSeconds: 300 } },
      benchPresigned: { ...profile, delivery: 'presigned' },
    },
  }),
);
const mint = (sub) =>
  new SignJWT({ sub })
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer(issuer)
    .setAudience('credvend')
    .setExpirationTime('2h')
    .sign(privateKey);
const token = await mint('bench');
const POOL = Number(process.env.BENCH_TOKEN_POOL || 20000);
const pool = await Promise.all(Array.from({ length: POOL }, (_, i) => mint(`bench-${i}`)));

const bport = await freePort();
const base = await start(
  0,
  'scripts/bench/baseline.mjs',
  { PORT: String(bport), CREDVEND_STS_ENDPOINT: stsEndpoint },
  'baseline ready',
);
const [port, adminPort] = [await freePort(), await freePort()];
const cv = await start(
  0,
  'dist/server.js',
  {
    CREDVEND_CONFIG_FILE: join(dir, 'profiles.json'),
    CREDVEND_HOST: '127.0.0.1',
    CREDVEND_PORT: String(port),
    CREDVEND_ADMIN_HOST: '127.0.0.1',
    CREDVEND_ADMIN_PORT: String(adminPort),
    CREDVEND_STS_ENDPOINT: stsEndpoint,
    CREDVEND_RATE_LIMIT_MAX: '0',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'ASIABENCHBASE',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_SESSION_TOKEN: 'bench',
    CREDVEND_AUDIT_LOG: join(dir, 'audit.log'),
  },
  'credvend ready',
  // As deployed: the Node flags of `npm start` (package.json; the image's entrypoint has the same).
  [...startFlags, ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [])],
);

// F: the bare SDK loop, a process of its own per segment, pinned like the servers.
function sdkLoop() {
  const [cmd, args] = pin(0, process.execPath, ['scripts/bench/sdk-loop.mjs']);
  const r = spawnSync(cmd, args, {
    env: {
      ...process.env,
      CREDVEND_STS_ENDPOINT: stsEndpoint,
      LOOP_CONCURRENCY: String(CONNECTIONS),
      LOOP_SECONDS: String(DURATION),
      LOOP_WARMUP_SECONDS: '3',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    encoding: 'utf8',
  });
  const line = r.stdout.trim().split('\n').pop();
  const out = JSON.parse(line);
  return { rps: out.rps, p50: NaN, p99: NaN, cpuUsPerRequest: out.cpuUsPerCall };
}

const url = (path) => `http://127.0.0.1:${port}${path}`;
const keys = { profile: 'bench', operation: 'upload', keys: ['a.txt'] };
const targets = {
  F: () => sdkLoop(),
  P: () => load(`http://127.0.0.1:${bport}/v1/credentials`, [token], base.pid, keys),
  S: () => load(url('/v1/credentials'), [token], cv.pid, keys),
  Snew: () => load(url('/v1/credentials'), pool, cv.pid, keys),
  Sreuse: () => load(url('/v1/credentials'), [token], cv.pid, { ...keys, profile: 'benchReuse' }),
  Spresigned: () => load(url('/v1/presigned'), [token], cv.pid, { ...keys, profile: 'benchPresigned' }),
  P10: () => load(`http://127.0.0.1:${bport}/v1/credentials`, [token], base.pid, keys, 10),
  S10: () => load(url('/v1/credentials'), [token], cv.pid, keys, 10),
};
// BENCH_ONLY=P,Sreuse: measure only these (profiling one path); prints the rounds, no summary.
if (process.env.BENCH_ONLY)
  for (const k of Object.keys(targets)) if (!process.env.BENCH_ONLY.split(',').includes(k)) delete targets[k];
console.log('warming up...');
for (const [name, warm] of Object.entries(targets)) if (name !== 'F') await warm(); // JIT, sockets, caches

const results = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
const fmt = (r) => `${r.rps.toFixed(0)}/s ${r.cpuUsPerRequest.toFixed(0)}us`;
for (let round = 1; round <= ROUNDS; round += 1) {
  for (const [name, run] of Object.entries(targets)) results[name].push(await run());
  const last = (k) => results[k]?.at(-1);
  console.log(
    `round ${round}: ${Object.keys(targets)
      .map((k) => `${k} ${fmt(last(k))}`)
      .join(', ')}${last('S') && last('P') ? `; S/P ${(last('S').rps / last('P').rps).toFixed(2)}` : ''}`,
  );
}
const rss = rssOf(cv.pid);
await stop(cv);
await stop(base);
if (process.env.BENCH_ONLY) process.exit(0);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ratio = (a, b) => Number(median(results[a].map((r, i) => r.rps / results[b][i].rps)).toFixed(3));
const med = (k, f) => median(results[k].map((r) => r[f]));
const summary = {
  segmentSeconds: DURATION,
  connections: CONNECTIONS,
  rounds: ROUNDS,
  pinned: hasTaskset,
  rps: Object.fromEntries(Object.keys(targets).map((k) => [k, Math.round(med(k, 'rps'))])),
  cpuUsPerRequest: Object.fromEntries(Object.keys(targets).map((k) => [k, Math.round(med(k, 'cpuUsPerRequest'))])),
  latencyMs: Object.fromEntries(
    Object.keys(targets)
      .filter((k) => k !== 'F')
      .map((k) => [k, { p50: med(k, 'p50'), p99: med(k, 'p99') }]),
  ),
  credvendRssMb: rss,
  ratios: {
    ratioReused: ratio('S', 'P'),
    ratioUnique: ratio('Snew', 'P'),
    ratioGrantReuse: ratio('Sreuse', 'P'),
    ratioPresigned: ratio('Spresigned', 'P'),
    ratioSF: ratio('S', 'F'),
    ratioPF: ratio('P', 'F'),
    p99At10SoverP: Number((med('S10', 'p99') / med('P10', 'p99')).toFixed(2)),
  },
};
mkdirSync('.tmp', { recursive: true });
writeFileSync('.tmp/bench.json', JSON.stringify(summary, null, 2));
const r = summary.ratios;
console.log(`\nS/P ${r.ratioReused} reused token, ${r.ratioUnique} new token per request (targets >= 0.90 / 0.85)`);
console.log(
  `S/F ${r.ratioSF}, P/F ${r.ratioPF} (F = bare SDK loop: ${summary.rps.F}/s, ${summary.cpuUsPerRequest.F} us CPU per call)`,
);
console.log(`grant reuse / P ${r.ratioGrantReuse}, presigned / P ${r.ratioPresigned} (targets >= 5)`);
console.log(
  `p99 at 10 connections: S ${med('S10', 'p99')} ms vs P ${med('P10', 'p99')} ms (target <= 2x); at ${CONNECTIONS}: S ${med('S', 'p99')} ms vs P ${med('P', 'p99')} ms`,
);
console.log(
  `CPU per request: S ${summary.cpuUsPerRequest.S} us, P ${summary.cpuUsPerRequest.P} us, F ${summary.cpuUsPerRequest.F} us; credvend RSS ${rss} MB (target <= 150)`,
);
console.log(
  JSON.stringify({
    ratioReused: r.ratioReused,
    ratioUnique: r.ratioUnique,
    ratioGrantReuse: r.ratioGrantReuse,
    ratioPresigned: r.ratioPresigned,
  }),
);
process.exit(0);
