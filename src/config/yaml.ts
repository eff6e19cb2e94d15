// YAML with its nesting bounded before it is composed. The yaml library's composer recurses once
// per nesting level: a 20 KB line of `[` overflows the stack, and at times the overflow lands in
// V8's regexp compiler, which aborts the whole process ("out of memory") instead of throwing.
// Its lexer is iterative, so it measures the depth first; a profiles file needs about six levels.
import { CST, Lexer, parse } from 'yaml';

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
  // Duplicate keys refused and alias expansion capped (billion laughs): spelled out so that a
  // library default change cannot loosen them.
  return parse(text, { uniqueKeys: true, maxAliasCount: 100 });
}
