// The load generator's process (forked by load.ts with tsx): `concurrency` closed-loop clients,
// bounded by request count, duration and a per-request client timeout. Outcomes go back to the
// test process over IPC in batches; a 200 is sent at once when the spec asks for a SIGKILL.
import { requestCredentials, type FromClient, type LoadSpec, type Outcome, type ToClient } from './load.js';

const send = (m: FromClient): Promise<void> => new Promise((r) => (process.send ? process.send(m, () => r()) : r()));

async function run(spec: LoadSpec, stopped: () => boolean): Promise<void> {
  const until = Date.now() + spec.maxDurationMs;
  let sent = 0;
  let ok = 0;
  let killed = false;
  let batch: Outcome[] = [];
  const flush = () => {
    if (batch.length === 0) return Promise.resolve();
    const outcomes = batch;
    batch = [];
    return send({ kind: 'outcomes', outcomes });
  };
  const ticker = setInterval(() => void flush(), 100);
  const worker = async () => {
    while (!stopped() && !killed && sent < spec.maxRequests && Date.now() < until) {
      sent += 1;
      const o = await requestCredentials(spec.url, spec.token, spec.body, spec.timeoutMs);
      batch.push(o);
      if (o.status === 200 && spec.kill && ++ok === spec.kill.afterOk) {
        process.kill(spec.kill.pid, 'SIGKILL'); // right after this 200, while the others are in flight
        killed = true; // the requests in flight are the ones cut off; no new ones
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  clearInterval(ticker);
  await flush();
}

let stop = false;
process.on('message', (m: ToClient) => {
  if (m.kind === 'stop') stop = true;
  else void run(m.spec, () => stop).then(() => process.exit(0)); // idle keep-alive sockets would keep it alive
});
process.on('disconnect', () => (stop = true));
