// Admission control in front of STS. At most `maxInFlight` AssumeRole calls run at once (the
// socket pool has exactly that many sockets, so a call never waits for a socket inside the SDK,
// where the wait would count against the connect timeout and come back as a false "STS timeout").
// Beyond that, up to `maxQueue` requests wait, each for at most `queueTimeoutMs`; anything more is
// shed at once with OverloadedError (503 CV_OVERLOADED + Retry-After). Shedding early keeps the
// work already admitted fast: under overload the rate of issued credentials stays at what STS
// and this process can do, instead of every caller timing out together.
import type { Metrics } from '../metrics/metrics.js';
import type { Sts } from './sts.js';

export type ShedReason = 'queue_full' | 'queue_timeout';

export class OverloadedError extends Error {
  constructor(readonly reason: ShedReason) {
    super(`over capacity (${reason})`);
    this.name = 'OverloadedError';
  }
}

export interface GateOptions {
  readonly maxInFlight: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  readonly metrics?: Pick<Metrics, 'shed' | 'stsInFlight' | 'stsQueued'>;
}

interface Waiter {
  admit(): void;
}

export function gateSts(sts: Sts, opts: GateOptions): Sts {
  let inFlight = 0;
  const queue: Waiter[] = [];
  const m = opts.metrics;
  const gauge = () => {
    m?.stsInFlight.set(inFlight);
    m?.stsQueued.set(queue.length);
  };
  const shed = (reason: ShedReason) => {
    m?.shed.inc({ reason });
    return new OverloadedError(reason);
  };
  const release = () => {
    const next = queue.shift();
    if (next)
      next.admit(); // the slot passes straight to the next waiter
    else inFlight -= 1;
    gauge();
  };
  const acquire = (signal: AbortSignal | undefined): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (inFlight < opts.maxInFlight) {
      inFlight += 1;
      gauge();
      return Promise.resolve();
    }
    if (queue.length >= opts.maxQueue) return Promise.reject(shed('queue_full'));
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        gauge();
      };
      const waiter: Waiter = {
        admit() {
          leave();
          resolve();
        },
      };
      const onAbort = () => {
        leave();
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        leave();
        reject(shed('queue_timeout'));
      }, opts.queueTimeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
      gauge();
    });
  };
  return {
    async assumeRole(plan, signal) {
      await acquire(signal);
      try {
        return await sts.assumeRole(plan, signal);
      } finally {
        release();
      }
    },
    serviceIdentity: () => sts.serviceIdentity(),
  };
}
