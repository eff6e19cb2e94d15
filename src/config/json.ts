// JSON with duplicate members refused. JSON.parse keeps the last of two equal keys, so a profile
// pasted twice, or a second `roleArn` further down the same profile, silently replaces the first:
// the file an operator reviews is not the one in force. YAML files already refuse duplicates.
//
// JSON.parse rather than the YAML parser with `uniqueKeys`: YAML accepts more than JSON (comments,
// single quotes, unquoted keys) and has limits of its own (1024-character implicit keys), so a
// `.json` file would no longer mean what every other JSON tool reads in it. JSON.parse checks the
// syntax; one linear, non-recursive scan of the (size-capped) text then finds duplicates.

export class DuplicateKeyError extends Error {
  constructor(
    readonly key: string,
    readonly path: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(
      `duplicate key ${JSON.stringify(key.slice(0, 64))}${path ? ` in ${path}` : ''} at line ${line}, column ${column}`,
    );
    this.name = 'DuplicateKeyError';
  }
}

interface Frame {
  /** Keys seen so far in an object; undefined in an array. */
  readonly keys: Set<string> | undefined;
  /** The member key (object) or element index (array) being read, for the error path. */
  at: string | number;
}

export function parseJsonStrict(text: string): unknown {
  const value: unknown = JSON.parse(text);
  const stack: Frame[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      const top = stack.at(-1);
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(start, i + 1)) as string; // "\u0061" and "a" are one key
        if (top.keys.has(key)) throw duplicate(text, start, key, stack);
        top.keys.add(key);
        top.at = key;
        expectKey = false;
      }
    } else if (c === '{') {
      stack.push({ keys: new Set(), at: '' });
      expectKey = true;
    } else if (c === '[') {
      stack.push({ keys: undefined, at: 0 });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack.at(-1);
      if (top?.keys) expectKey = true;
      else if (top) top.at = (top.at as number) + 1;
    }
  }
  return value;
}

function duplicate(text: string, offset: number, key: string, stack: readonly Frame[]): DuplicateKeyError {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  const path = stack
    .slice(0, -1)
    .map((f) => String(f.at))
    .join('.');
  return new DuplicateKeyError(key, path, line, column);
}
