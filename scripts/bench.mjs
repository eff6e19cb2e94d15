// npm run bench: credvend vs a minimal Fastify route making the same STS call, both against a
// loopback STS stub, measured with autocannon. Reports requests/s and the ratio (target >= 0.90).
// Each server gets core 0 (taskset, when available); the stub and the load generator share core 1.
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

const freePort = () => new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });

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
      if (buf.includes(readyText)) { clearTimeout(timer); child.stdout.resume(); child.stdout.removeAllListeners('data'); child.stdout.on('data', () => {}); resolve(child); }
    });
  });
}
const stop = (child) => new Promise((r) => { child.removeAllListeners('exit'); child.on('exit', r); child.kill('SIGTERM'); });

// CPU time (user + system) a process has used, in microseconds, from /proc: CPU per request is
// steadier than requests/s when something else shares the machine.
function cpuMicros(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * (1e6 / 100); // utime, stime in clock ticks (100 Hz)
  } catch { return NaN; }
}

// tokens: one token (a browser or credential_process reusing its ID token) or a pool of
// distinct tokens rotated per request (CI jobs, each with its own token: no verification cache hit).
async function load(url, tokens, pid) {
  let next = 0;
  const opts = { url, method: 'POST', connections: CONNECTIONS, pipelining: 1, headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[0]}` },
    body: JSON.stringify({ profile: 'bench', operation: 'upload', keys: ['a.txt'] }),
    ...(tokens.length > 1 ? { requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` } }) }] } : {}) };
  await autocannon({ ...opts, duration: WARMUP }); // warm-up: JIT, keep-alive sockets, caches
  const cpu0 = cpuMicros(pid);
  const r = await autocannon({ ...opts, duration: DURATION });
  const cpu = cpuMicros(pid) - cpu0;
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, cpuUsPerRequest: cpu / r.requests.total };
}

console.log('building...');
if (!process.env.BENCH_NO_BUILD && spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' }).status !== 0) process.exit(1);
const dir = mkdtempSync(join(tmpdir(), 'credvend-bench-'));
const stubPort = await freePort();
await start(1, 'scripts/bench/sts-stub.mjs', { STUB_PORT: String(stubPort) }, 'sts-stub ready');
const stsEndpoint = `http://127.0.0.1:${stubPort}`;

const { publicKey, privateKey } = await generateKeyPair('RS256');
const issuer = 'https://bench.issuer.local';
writeFileSync(join(dir, 'profiles.json'), JSON.stringify({
  issuers: [{ issuer, audiences: ['credvend'], publicKey: await exportSPKI(publicKey), algorithms: ['RS256'] }],
  profiles: { bench: { roleArn: 'arn:aws:iam::123456789012:role/bench', bucket: 'bench-bucket', region: 'us-east-1', prefix: 'uploads/{sub}/', match: { iss: issuer } } },
}));
const mint = (sub) => new SignJWT({ sub }).setProtectedHeader({ alg: 'RS256' }).setIssuer(issuer).setAudience('credvend').setExpirationTime('2h').sign(privateKey);
const token = await mint('bench');
const POOL = Number(process.env.BENCH_TOKEN_POOL || 20000);
const pool = await Promise.all(Array.from({ length: POOL }, (_, i) => mint(`bench-${i}`)));

// Both servers run side by side (only the one under load uses its core) and short segments are
// interleaved, so a change in the machine's speed (shared VMs drift by 2x over minutes) hits
// both sides of every ratio alike. The ratio reported is the median over rounds.
const bport = await freePort();
const base = await start(0, 'scripts/bench/baseline.mjs', { PORT: String(bport), CREDVEND_STS_ENDPOINT: stsEndpoint }, 'baseline ready');
const [port, adminPort] = [await freePort(), await freePort()];
const cv = await start(0, 'dist/server.js', {
  CREDVEND_CONFIG_FILE: join(dir, 'profiles.json'), CREDVEND_HOST: '127.0.0.1', CREDVEND_PORT: String(port),
  CREDVEND_ADMIN_HOST: '127.0.0.1', CREDVEND_ADMIN_PORT: String(adminPort), CREDVEND_STS_ENDPOINT: stsEndpoint,
  CREDVEND_RATE_LIMIT_MAX: '0', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'ASIABENCHBASE', AWS_SECRET_ACCESS_KEY: 'bench', AWS_SESSION_TOKEN: 'bench',
  CREDVEND_AUDIT_LOG: join(dir, 'audit.log'),
}, 'credvend ready', process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []);
const targets = {
  baseline: () => load(`http://127.0.0.1:${bport}/v1/credentials`, [token], base.pid),
  credvend: () => load(`http://127.0.0.1:${port}/v1/credentials`, [token], cv.pid),
  credvendUnique: () => load(`http://127.0.0.1:${port}/v1/credentials`, pool, cv.pid),
};
for (const warm of Object.values(targets)) await warm(); // JIT, sockets, caches

const results = { baseline: [], credvend: [], credvendUnique: [] };
const fmt = (r) => `${r.rps.toFixed(0)} req/s (${r.cpuUsPerRequest.toFixed(0)} us CPU/req)`;
for (let round = 1; round <= ROUNDS; round += 1) {
  for (const [name, run] of Object.entries(targets)) results[name].push(await run());
  const [b, c, u] = [results.baseline.at(-1), results.credvend.at(-1), results.credvendUnique.at(-1)];
  console.log(`round ${round}: baseline ${fmt(b)}, credvend reused token ${fmt(c)} ratio ${(c.rps / b.rps).toFixed(2)}, unique tokens ${fmt(u)} ratio ${(u.rps / b.rps).toFixed(2)}`);
}
await stop(cv);
await stop(base);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ratios = (name, k) => results[name].map((r, i) => (k === 'rps' ? r.rps / results.baseline[i].rps : results.baseline[i].cpuUsPerRequest / r.cpuUsPerRequest));
const summary = {
  segmentSeconds: DURATION, connections: CONNECTIONS, rounds: ROUNDS, pinned: hasTaskset,
  baselineRps: Math.round(median(results.baseline.map((r) => r.rps))),
  credvendRps: Math.round(median(results.credvend.map((r) => r.rps))),
  credvendUniqueTokensRps: Math.round(median(results.credvendUnique.map((r) => r.rps))),
  ratio: Number(median(ratios('credvend', 'rps')).toFixed(3)),
  ratioUniqueTokens: Number(median(ratios('credvendUnique', 'rps')).toFixed(3)),
  cpuRatio: Number(median(ratios('credvend', 'cpu')).toFixed(3)),
  baselineCpuUsPerRequest: Math.round(median(results.baseline.map((r) => r.cpuUsPerRequest))),
  credvendCpuUsPerRequest: Math.round(median(results.credvend.map((r) => r.cpuUsPerRequest))),
  baselineP99Ms: median(results.baseline.map((r) => r.p99)), credvendP99Ms: median(results.credvend.map((r) => r.p99)),
};
mkdirSync('.tmp', { recursive: true });
writeFileSync('.tmp/bench.json', JSON.stringify(summary, null, 2));
console.log(`\nratio ${summary.ratio} (target >= 0.90): credvend ${summary.credvendRps} req/s vs minimal route ${summary.baselineRps} req/s, reused token (median of ${ROUNDS} interleaved rounds)`);
console.log(`ratio ${summary.ratioUniqueTokens} with a new token per request (${summary.credvendUniqueTokensRps} req/s)`);
console.log(`CPU per request: credvend ${summary.credvendCpuUsPerRequest} us vs minimal route ${summary.baselineCpuUsPerRequest} us: ratio ${summary.cpuRatio}`);
process.exit(0);
