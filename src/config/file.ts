// Reading the profiles file with a size cap checked BEFORE the read. Unbounded, a 50 MB YAML file
// took 7.7 s and 1.8 GB to accept, and 50 MB of junk ended in a V8 out-of-memory abort with no
// message at all; a FIFO or a device (/dev/zero) would never end.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export class ConfigFileTooLargeError extends Error {
  constructor(
    /** undefined: known only to be over the limit. */
    readonly size: number | undefined,
    readonly maxBytes: number,
  ) {
    super(
      `${size === undefined ? 'is larger than' : `is ${size} bytes, over`} the limit of ${describeBytes(maxBytes)} (set by CREDVEND_CONFIG_MAX_BYTES)`,
    );
    this.name = 'ConfigFileTooLargeError';
  }
}

export function describeBytes(n: number): string {
  return n % 1_048_576 === 0 ? `${n / 1_048_576} MiB` : `${n} bytes`;
}

/** The file as UTF-8, or an error: not a regular file, or larger than `maxBytes`. */
export function readConfigFile(path: string, maxBytes: number): string {
  const fd = openSync(path, 'r');
  try {
    // fstat of the opened file, not stat of the path: the file checked is the file read.
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > maxBytes) throw new ConfigFileTooLargeError(stat.size, maxBytes);
    // Read at most one byte past the cap: a file that grew since the fstat is caught too.
    const buf = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (let n; length < buf.length && (n = readSync(fd, buf, length, buf.length - length, null)) > 0;) length += n;
    if (length > maxBytes) throw new ConfigFileTooLargeError(undefined, maxBytes);
    return buf.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}
