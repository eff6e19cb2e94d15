// A strict JSON reader for JOSE headers and JWT payloads.
//
// Threat: parser differentials. `JSON.parse` keeps the last of two members with the same name, so
// `{"sub":"alice","sub":"mallory"}` or `{"alg":"none","alg":"RS256"}` means one thing to a
// component that reads the first member and another to us. RFC 7515 §5.2 / RFC 7519 §7.2 let a
// recipient reject duplicate member names; we always do. Objects are built without a prototype,
// so a member named `__proto__` is plain data. Nesting is bounded so no input can exhaust the stack.
// Strings and numbers are handed to JSON.parse one literal at a time: escapes and number syntax are
// exactly JSON's, not a re-implementation.

export class StrictJsonError extends Error {
  override readonly name = 'StrictJsonError';
}

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [member: string]: JsonValue;
}

const MAX_DEPTH = 16;
const WS = new Set([' ', '\t', '\n', '\r']);
// RFC 8259 string: no raw control characters; escapes are validated by JSON.parse below.
const STRING = /"(?:[^"\\\u0000-\u001f]|\\.)*"/y;
const KEYWORDS: ReadonlyArray<readonly [string, JsonValue]> = [
  ['true', true],
  ['false', false],
  ['null', null],
];
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Parses one JSON text; throws StrictJsonError on a duplicate member, bad syntax or deep nesting. */
export function parseStrictJson(text: string): JsonValue {
  let i = 0;

  const skip = () => {
    while (i < text.length && WS.has(text[i] as string)) i += 1;
  };
  const literal = (re: RegExp): string => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) throw new StrictJsonError('malformed JSON');
    i = re.lastIndex;
    return m[0];
  };
  const expect = (c: string) => {
    skip();
    if (text[i] !== c) throw new StrictJsonError('malformed JSON');
    i += 1;
  };

  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) throw new StrictJsonError('JSON nested too deeply');
    skip();
    const c = text[i];
    if (c === '{') {
      i += 1;
      const obj = Object.create(null) as JsonObject;
      skip();
      if (text[i] === '}') {
        i += 1;
        return obj;
      }
      for (;;) {
        skip();
        const name = JSON.parse(literal(STRING)) as string;
        if (Object.hasOwn(obj, name)) throw new StrictJsonError('duplicate member');
        expect(':');
        obj[name] = value(depth + 1);
        skip();
        if (text[i] === ',') {
          i += 1;
          continue;
        }
        expect('}');
        return obj;
      }
    }
    if (c === '[') {
      i += 1;
      const arr: JsonValue[] = [];
      skip();
      if (text[i] === ']') {
        i += 1;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        skip();
        if (text[i] === ',') {
          i += 1;
          continue;
        }
        expect(']');
        return arr;
      }
    }
    if (c === '"') return JSON.parse(literal(STRING)) as string;
    for (const [word, v] of KEYWORDS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return JSON.parse(literal(NUMBER)) as number;
  };

  try {
    const v = value(0);
    skip();
    if (i !== text.length) throw new StrictJsonError('malformed JSON');
    return v;
  } catch (err) {
    if (err instanceof StrictJsonError) throw err;
    // JSON.parse of one literal (a bad escape such as "\x"): the same verdict, without its text.
    throw new StrictJsonError('malformed JSON');
  }
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
