// Access lines, written as pino writes them but without its per-call work, and handed to the log
// destination in batches. At thousands of requests a second, pino's generic path (field
// serialisation, then sonic-boom measuring its whole pending buffer's UTF-8 length on every line)
// cost more than any other part of a reused grant's request but the audit record.
//
// The line is byte for byte what `logger[level](fields, msg)` writes for a logger without custom
// formatters, serializers or hooks (test/unit/log-lines.test.ts holds it to pino's own output):
// the level, the logger's time and bindings, the fields, the message. Fields are JSON values the
// caller chose (numbers, and strings that JSON.stringify escapes); no secret can be among them:
// this path is for lines whose fields are fixed, and everything else goes through the logger.
import pino, { type Logger } from 'pino';
import { isoTimeCache } from './iso-time.js';

export interface LineBatching {
  /** A batch goes out once this many characters have gathered... */
  readonly bytes: number;
  /** ...or this long after its first line. */
  readonly ms: number;
}

export interface LineWriter {
  /** Writes `{ ...fields, msg }` at `level` if the logger has it enabled. */
  write(level: 'info' | 'debug', fields: Readonly<Record<string, string | number>>, msg: string): void;
  /** Hands every gathered line to the destination (app close; the timer does it otherwise). */
  flush(): void;
}

interface PinoInternals {
  [pino.symbols.streamSym]: { write(chunk: string): unknown };
  [pino.symbols.timeSym]: () => string;
  [pino.symbols.chindingsSym]: string;
  [pino.symbols.messageKeySym]: string;
}

/**
 * Lines for `logger`'s destination: written at once without `batching` (tests read them at once),
 * otherwise gathered and written together (one destination write per batch, not per line).
 */
export function lineWriter(logger: Logger, batching?: LineBatching): LineWriter {
  const internals = logger as unknown as PinoInternals;
  const stream = internals[pino.symbols.streamSym];
  // pino's ISO time (the service's logger) from a per-millisecond cache: the same string.
  const isoNow = isoTimeCache();
  const pinoTime = internals[pino.symbols.timeSym];
  const time = pinoTime === pino.stdTimeFunctions.isoTime ? () => `,"time":"${isoNow(Date.now())}"` : pinoTime;
  const bindings = internals[pino.symbols.chindingsSym];
  const msgKey = JSON.stringify(internals[pino.symbols.messageKeySym]);
  const heads = { info: `{"level":${logger.levels.values.info}`, debug: `{"level":${logger.levels.values.debug}` };

  let pending: string[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const chunk = pending.join('');
    pending = [];
    size = 0;
    stream.write(chunk);
  };

  return {
    write(level, fields, msg) {
      if (!logger.isLevelEnabled(level)) return;
      // One JSON.stringify for all the fields: `{...}` without its braces is pino's `,"k":v` run.
      const body = JSON.stringify(fields);
      const line = `${heads[level]}${time()}${bindings}${body.length > 2 ? `,${body.slice(1, -1)}` : ''},${msgKey}:${JSON.stringify(msg)}}\n`;
      if (!batching) {
        stream.write(line);
        return;
      }
      pending.push(line);
      size += line.length;
      if (size >= batching.bytes) flush();
      else if (!timer) {
        timer = setTimeout(flush, batching.ms);
        timer.unref();
      }
    },
    flush,
  };
}
