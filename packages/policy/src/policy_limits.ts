// Size and depth limits for Cedar input, checked in TypeScript before cedar-wasm sees anything.
// cedar-wasm recurses on the input's nesting (parser, JSON conversion, evaluator) on a fixed wasm
// stack; past it the instance traps. Measured on cedar-wasm 4.13: about 140 nested parentheses or
// a 1,500-term chain trap the parser, a 400-term `||` chain traps evaluation. The limits below stay
// well inside those numbers and far above what real policies use (docs/security.md).

/** The documented limits (docs/security.md, docs/authorization.md). */
export const POLICY_LIMITS = {
  /** Bytes of one policy's text. */
  policyBytes: 64 * 1024,
  /** Nesting of (), [] and {} in a policy, a schema fragment, or an entity / context value. */
  nesting: 32,
  /** Operators in one policy (||, &&, comparisons, arithmetic, !, ., has, like, in, is, if). */
  operators: 256,
  /** Bytes of the whole schema. */
  schemaBytes: 1024 * 1024,
  /** Depth of the entity hierarchy (parent of parent of ...). */
  hierarchyDepth: 64,
} as const;

export interface LimitProblem {
  message: string;
  help: string;
}

const OPERATOR_WORDS = new Set(['has', 'like', 'in', 'is', 'if']);

/**
 * Scans Cedar text (policy or schema) for nesting and operator count, skipping string literals
 * and comments. Linear in the text, no recursion: safe on any input.
 */
export function scanCedarText(
  text: string,
  kind: 'policy' | 'schema' = 'policy',
): { nesting: number; operators: number } {
  // In a schema `<` and `>` enclose type arguments (Set<Long>); in a policy they compare.
  const open = kind === 'schema' ? '([{<' : '([{';
  const close = kind === 'schema' ? ')]}>' : ')]}';
  let depth = 0;
  let nesting = 0;
  let operators = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (open.includes(c)) {
      depth++;
      if (depth > nesting) nesting = depth;
    } else if (close.includes(c)) {
      depth = Math.max(0, depth - 1);
    } else if ('|&=!<>+-*.'.includes(c)) {
      operators++;
      // Two-character operators count once.
      if ((c === '|' || c === '&' || c === '=') && text[i + 1] === c) i++;
      else if ((c === '!' || c === '<' || c === '>') && text[i + 1] === '=') i++;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      if (OPERATOR_WORDS.has(text.slice(i, j))) operators++;
      i = j - 1;
    }
  }
  return { nesting, operators };
}

/** Problems of one policy's text against {@link POLICY_LIMITS}; empty when within them. */
export function policyTextProblems(text: string): LimitProblem[] {
  const out: LimitProblem[] = [];
  if (Buffer.byteLength(text, 'utf8') > POLICY_LIMITS.policyBytes) {
    out.push({
      message: `the policy is longer than ${POLICY_LIMITS.policyBytes} bytes`,
      help: 'split it into several policies',
    });
    return out;
  }
  const s = scanCedarText(text);
  if (s.nesting > POLICY_LIMITS.nesting)
    out.push({
      message: `the policy nests ${s.nesting} levels deep; at most ${POLICY_LIMITS.nesting} are allowed`,
      help: 'flatten the expression',
    });
  if (s.operators > POLICY_LIMITS.operators) {
    out.push({
      message: `the policy has ${s.operators} operators; at most ${POLICY_LIMITS.operators} are allowed`,
      help: 'use a set with `in` or `.contains()` instead of long chains, or split the policy',
    });
  }
  return out;
}

/** Problems of the schema text (all fragments joined) against {@link POLICY_LIMITS}. */
export function schemaTextProblems(text: string): LimitProblem[] {
  if (Buffer.byteLength(text, 'utf8') > POLICY_LIMITS.schemaBytes)
    return [{ message: `the schema is longer than ${POLICY_LIMITS.schemaBytes} bytes`, help: 'split the bundle' }];
  const s = scanCedarText(text, 'schema');
  return s.nesting > POLICY_LIMITS.nesting
    ? [
        {
          message: `the schema nests ${s.nesting} levels deep; at most ${POLICY_LIMITS.nesting} are allowed`,
          help: 'flatten record types',
        },
      ]
    : [];
}

/** Depth of a JSON value (a scalar is 0); stops counting past `limit`. Iterative: safe on any input. */
export function jsonDepth(value: unknown, limit: number = POLICY_LIMITS.nesting): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    if (max > limit) return max;
    for (const x of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push([x, depth]);
  }
  return max;
}

/**
 * The depth of the longest parent chain among `entities` (an entity without parents is 1), or
 * Infinity when a cycle is found. Iterative, linear in entities and edges.
 */
export function hierarchyDepth(
  entities: readonly { uid: { type: string; id: string }; parents: readonly { type: string; id: string }[] }[],
): number {
  const key = (u: { type: string; id: string }) => `${u.type}::${JSON.stringify(u.id)}`;
  const parents = new Map<string, string[]>();
  for (const e of entities) parents.set(key(e.uid), e.parents.map(key));
  const depth = new Map<string, number>();
  const state = new Map<string, 1 | 2>(); // 1 visiting, 2 done
  let max = 0;
  for (const start of parents.keys()) {
    if (state.get(start) === 2) continue;
    const stack: [string, number][] = [[start, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [k, i] = top;
      const ps = parents.get(k) ?? [];
      if (i === 0) state.set(k, 1);
      if (i < ps.length) {
        top[1]++;
        const p = ps[i]!;
        const s = state.get(p);
        if (s === 1) return Infinity;
        if (s === undefined) stack.push([p, 0]);
        continue;
      }
      let d = 1;
      for (const p of ps) d = Math.max(d, (depth.get(p) ?? 1) + 1);
      depth.set(k, d);
      state.set(k, 2);
      if (d > max) max = d;
      stack.pop();
    }
  }
  return max;
}
