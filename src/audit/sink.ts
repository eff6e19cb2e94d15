// Where audit lines go, and the proof that they got there. `write` resolves with how many bytes
// the operating system accepted; a record counts as written only when all of its bytes were.
// That is what lets the service refuse a credential whose record did not land (fail closed).
import { mkdirSync, openSync, write as fsWrite, close as fsClose } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';

export interface SinkResult {
  /** Bytes of the chunk the destination accepted, from its start. */
  readonly written: number;
  /** Why the rest was not written (ENOSPC, EIO, EPIPE, ...); undefined when all was. */
  readonly error?: { readonly code: string };
}

export interface AuditSink {
  write(chunk: Buffer): Promise<SinkResult>;
  close(): Promise<void>;
}

// A full pipe (EAGAIN) is back-pressure, not failure: retried for this long, then the destination
// counts as unwritable and issuance stops until it drains.
const AGAIN_DEADLINE_MS = 2000;

const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code) ? code : 'EIO';
};

/**
 * 'stdout' (file descriptor 1) or a file opened for appending. Each chunk is one write(2) (more
 * after a short write): handed to the OS before the answer leaves, so a SIGKILL right after the
 * answer loses nothing. No fsync: it would cost a disk flush per decision and protects only
 * against a kernel crash or power loss, which the page cache survives on every managed disk we
 * target (EBS, ephemeral storage behind a log shipper).
 */
export function fileSink(spec: string): AuditSink {
  let fd: number;
  if (spec === 'stdout') fd = 1;
  else {
    mkdirSync(dirname(spec), { recursive: true });
    fd = openSync(spec, 'a');
  }
  const writeOnce = (buf: Buffer, offset: number) =>
    new Promise<{ n: number; err?: unknown }>((resolve) => {
      fsWrite(fd, buf, offset, buf.length - offset, null, (err, n) => resolve(err ? { n: 0, err } : { n }));
    });
  return {
    async write(chunk) {
      let written = 0;
      const againUntil = Date.now() + AGAIN_DEADLINE_MS;
      while (written < chunk.length) {
        const { n, err } = await writeOnce(chunk, written);
        if (err) {
          const code = codeOf(err);
          if (code === 'EAGAIN' && Date.now() < againUntil) {
            await new Promise((r) => setTimeout(r, 5));
            continue;
          }
          return { written, error: { code } };
        }
        written += n;
      }
      return { written };
    },
    async close() {
      if (fd === 1) return;
      await new Promise<void>((resolve) => fsClose(fd, () => resolve()));
    },
  };
}

/** A Node stream (tests, or a custom transport): all of a chunk or none of it. */
export function streamSink(stream: Writable): AuditSink {
  return {
    write(chunk) {
      return new Promise((resolve) => {
        stream.write(chunk, (err) =>
          resolve(err ? { written: 0, error: { code: codeOf(err) } } : { written: chunk.length }),
        );
      });
    },
    async close() {},
  };
}
