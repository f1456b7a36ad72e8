import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { CedarTrap, withCedar } from './cedar_engine.ts';

/** One problem Cedar found, located in the file (schema fragment) or policy it came from. */
export interface PolicyProblem {
  /** `schema` fragment name, policy id, or `entities`. */
  source: string;
  kind: 'schema' | 'policy' | 'entities';
  message: string;
  help: string | null;
  /** 1-based line and column within that fragment or policy text, when Cedar gave a location. */
  line?: number;
  column?: number;
}

/** 1-based line and column of a byte offset in `text` (Cedar reports UTF-8 byte offsets). */
function lineColumn(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

/** A Cedar error as a located {@link PolicyProblem} (`offsetBase`: where `text` starts in what Cedar parsed). */
export function cedarProblem(
  kind: PolicyProblem['kind'],
  source: string,
  text: string | undefined,
  e: cedar.DetailedError,
  offsetBase = 0,
): PolicyProblem {
  const p: PolicyProblem = { source, kind, message: e.message, help: e.help ?? null };
  const loc = e.sourceLocations?.[0];
  if (loc && text !== undefined) Object.assign(p, lineColumn(text, loc.start - offsetBase));
  return p;
}

/**
 * Splits a `.cedar` file into policies by id: the `@id("...")` annotation when a policy has one,
 * otherwise `<file>#<n>` (n counting from 1). Throws Cedar's parse errors with their location.
 */
export function splitPolicyFile(
  file: string,
  text: string,
): { policies: Record<string, string>; errors: PolicyProblem[] } {
  let parts: ReturnType<typeof cedar.policySetTextToParts>;
  try {
    parts = withCedar((c) => c.policySetTextToParts(text));
  } catch (err) {
    if (!(err instanceof CedarTrap)) throw err;
    return {
      policies: {},
      errors: [
        { source: file, kind: 'policy', message: err.message, help: 'reduce the size or nesting of the policies' },
      ],
    };
  }
  if (parts.type === 'failure')
    return { policies: {}, errors: parts.errors.map((e) => cedarProblem('policy', file, text, e)) };
  const policies: Record<string, string> = {};
  const errors: PolicyProblem[] = [];
  parts.policies.forEach((p, i) => {
    const id = /@id\(\s*"((?:[^"\\]|\\.)*)"\s*\)/.exec(p)?.[1] ?? `${file}#${i + 1}`;
    if (policies[id] !== undefined)
      errors.push({
        source: file,
        kind: 'policy',
        message: `policy id ${JSON.stringify(id)} is used twice`,
        help: null,
      });
    policies[id] = p;
  });
  return { policies, errors };
}
