// F in `npm run bench`: a bare SDK AssumeRole loop, no HTTP server at all, the same client
// settings and request as the minimal route. What one core can do when it does nothing but call
// STS: the ceiling for any credential service built on the SDK.
// Prints one JSON line: { calls, seconds, rps, cpuUsPerCall }.
import { assumeRole as call } from './sdk-call.mjs';

const CONCURRENCY = Number(process.env.LOOP_CONCURRENCY || 16);
const SECONDS = Number(process.env.LOOP_SECONDS || 4);
const WARMUP = Number(process.env.LOOP_WARMUP_SECONDS || 2);
async function run(seconds) {
  const until = performance.now() + seconds * 1000;
  let calls = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        await call();
        calls += 1;
      }
    }),
  );
  return calls;
}

await run(WARMUP);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const calls = await run(SECONDS);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ calls, seconds, rps: calls / seconds, cpuUsPerCall: (cpu.user + cpu.system) / calls }));
