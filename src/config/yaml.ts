// YAML with its nesting bounded before it is composed. The yaml library's composer recurses once
// per nesting level: a 20 KB line of `[` overflows the stack, and at times the overflow lands in
// V8's regexp compiler, which aborts the whole process ("out of memory") instead of throwing.
// Its lexer is iterative, so it measures the depth first; a profiles file needs about six levels.
import { CST, isScalar, Lexer, LineCounter, parseDocument, visit } from 'yaml';

export const MAX_YAML_DEPTH = 128;

/**
 * An upper bound of the nesting depth: open flow collections, plus the indentation of the line
 * and the block indicators (`- `, `? `, `: `) on it outside flow collections, each one a level.
 */
function depthExceeds(text: string, max: number): boolean {
  let flow = 0;
  let indent = 0;
  let indicators = 0;
  let lineStart = true;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type === 'newline') {
      indent = 0;
      indicators = 0;
      lineStart = true;
      continue;
    }
    if (type === 'space' && lineStart) indent = token.length;
    else if (type === 'flow-seq-start' || type === 'flow-map-start') flow++;
    else if (type === 'flow-seq-end' || type === 'flow-map-end') flow = Math.max(0, flow - 1);
    // Inside a flow collection `:` and `?` nest nothing (JSON written as YAML has one per member).
    else if (flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind'))
      indicators++;
    if (type !== 'space') lineStart = false;
    if (flow + indent + indicators > max) return true;
  }
  return false;
}

export function parseYamlBounded(text: string): unknown {
  if (depthExceeds(text, MAX_YAML_DEPTH)) throw new Error(`nested deeper than ${MAX_YAML_DEPTH} levels`);
  // Alias expansion capped (billion laughs) and duplicate keys refused, spelled out so that a
  // library default change cannot loosen them. Duplicates are found here, not by the library's
  // `uniqueKeys`: that compares every pair of a mapping's keys, and 40,000 profiles (a 470 KB
  // file) took 11 s to refuse; a set per mapping is linear.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: false, lineCounter });
  if (doc.errors.length > 0) throw doc.errors[0]!;
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const { key } of map.items) {
        // Scalar keys compare by value, as `uniqueKeys: true` does; a collection or alias key is
        // never equal to another (the profiles schema only has string keys, and refuses others).
        if (!isScalar(key)) continue;
        if (seen.has(key.value)) {
          const at = key.range ? lineCounter.linePos(key.range[0]) : undefined;
          const where = at ? ` at line ${at.line}, column ${at.col}` : '';
          throw new Error(`Map keys must be unique: ${JSON.stringify(String(key.value)).slice(0, 66)}${where}`);
        }
        seen.add(key.value);
      }
    },
  });
  return doc.toJS({ maxAliasCount: 100 });
}
