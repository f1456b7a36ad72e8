import type { FederationRuleRecord } from '../storage/ports.ts';

/** `*` stands for any run of characters (none included); anything else is itself. */
export function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    's',
  );
  return re.test(value);
}

/** RFC 6901 JSON Pointer into a claims object; undefined when a step is missing. */
export function pointer(value: unknown, ptr: string): unknown {
  if (ptr === '') return value;
  if (!ptr.startsWith('/')) return undefined;
  let at: unknown = value;
  for (const raw of ptr.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** One rule held against one token: whether it maps it, and which conditions failed. */
export interface RuleCheck {
  rule: string;
  clientId: string;
  matched: boolean;
  /** The conditions that did not hold, in words (empty when matched). */
  failed: string[];
  /** Everything held but the audience. */
  audienceOnly: boolean;
}

const audiences = (aud: unknown): string[] =>
  typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];

/**
 * Holds each rule against the token's claims: `sub` (exact or pattern), `aud` (the rule's, or
 * one of `defaultAudiences`: this IdP's issuer and token endpoint, RFC 7523 §3 item 3), and each
 * claim condition (a JSON Pointer whose value — a string, or a number or boolean as text — equals
 * or matches the pattern). The first rule that holds maps the token; all are explained.
 */
export function checkRules(
  rules: readonly FederationRuleRecord[],
  claims: Record<string, unknown>,
  defaultAudiences: readonly string[],
): { match: FederationRuleRecord | undefined; checks: RuleCheck[] } {
  const aud = audiences(claims.aud);
  const checks = rules.map((r): RuleCheck => {
    const failed: string[] = [];
    const sub = typeof claims.sub === 'string' ? claims.sub : '';
    if (!globMatch(r.subject, sub)) failed.push(`sub ${JSON.stringify(sub)} is not ${JSON.stringify(r.subject)}`);
    for (const [ptr, want] of Object.entries(r.claims)) {
      const v = pointer(claims, ptr);
      const text = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
      if (text === undefined || !globMatch(want, text))
        failed.push(
          `${ptr} ${text === undefined ? 'is missing' : JSON.stringify(text)} is not ${JSON.stringify(want)}`,
        );
    }
    const wanted = r.audience !== null ? [r.audience] : defaultAudiences;
    const audOk = aud.some((a) => wanted.includes(a));
    if (!audOk)
      failed.push(`aud ${JSON.stringify(aud)} does not include ${wanted.map((w) => JSON.stringify(w)).join(' or ')}`);
    return {
      rule: r.name,
      clientId: r.clientId,
      matched: failed.length === 0,
      failed,
      audienceOnly: !audOk && failed.length === 1,
    };
  });
  const first = checks.findIndex((c) => c.matched);
  return { match: first >= 0 ? rules[first] : undefined, checks };
}
