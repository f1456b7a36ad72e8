import { OAuthError } from '../../errors.ts';
import type { ClientMetadata } from '../../storage/ports.ts';

/**
 * What each client metadata member means for what the client's tokens and feeds may do, and so
 * which changes a client may make to itself through RFC 7592 (§2.2 lets the server refuse values it
 * does not allow the client to set). An administrator (PUT /admin/clients/{id}) may set anything.
 *
 * - `grant`: widens what the client may do; absent means nothing. The client may drop values, never add.
 * - `constraint-set`: restricts what the client may see; absent means no restriction. The client may
 *   narrow it (a non-empty subset, or a first restriction) but never remove or widen it; omitting
 *   the member keeps it.
 * - `administered`: both grants and constrains (roles: policies permit on them and forbid on them,
 *   a quarantine role among them). Only an administrator changes it; omitting it keeps it.
 * - `ceiling`: a number the client may lower, never raise; omitting it keeps it.
 * - `constraint-flag`: a protection the client may turn on, never off; omitting it keeps it.
 * - `own`: the client's own name, keys and authentication method; free to change.
 * - `derived`: worked out from other members or by the server (checked where it is computed).
 *
 * Typed as a record over every member, so a new member cannot be added without a rule.
 */
export const METADATA_RULES: { readonly [K in keyof Required<ClientMetadata>]: MemberRule } = {
  audiences: { kind: 'grant', absent: 'nothing' },
  scope: { kind: 'grant', absent: 'nothing' },
  grant_types: { kind: 'grant', absent: 'client_credentials' },
  policy_namespaces: { kind: 'constraint-set', absent: 'every namespace' },
  roles: { kind: 'administered', absent: 'no roles' },
  access_token_ttl: { kind: 'ceiling', absent: 'the server default' },
  tls_client_certificate_bound_access_tokens: { kind: 'constraint-flag', absent: 'false' },
  client_name: { kind: 'own', absent: 'no name' },
  jwks: { kind: 'own', absent: 'no inline keys' },
  jwks_uri: { kind: 'own', absent: 'no remote keys' },
  token_endpoint_auth_method: { kind: 'own', absent: 'client_secret_basic' },
  token_endpoint_auth_signing_alg: { kind: 'own', absent: 'any allowed algorithm' },
  default_audience: { kind: 'derived', absent: 'the first audience' },
  tls_client_auth_san_uri: { kind: 'derived', absent: "the client's own SPIFFE ID" },
  redirect_uris: { kind: 'grant', absent: 'nothing' },
  require_pushed_authorization_requests: { kind: 'constraint-flag', absent: 'false' },
  post_logout_redirect_uris: { kind: 'grant', absent: 'nothing' },
  require_second_factor: { kind: 'constraint-flag', absent: 'false' },
  user_attributes: { kind: 'administered', absent: 'no user attributes in tokens' },
  consent_required: { kind: 'constraint-flag', absent: 'false (a first-party client: no consent asked)' },
};

export interface MemberRule {
  kind: 'grant' | 'constraint-set' | 'administered' | 'ceiling' | 'constraint-flag' | 'own' | 'derived';
  /** What the member's absence means. */
  absent: string;
}

const refuse = (member: string, why: string): OAuthError =>
  new OAuthError('invalid_client_metadata', `${member}: ${why}`);

const asList = (v: unknown): string[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? v.split(' ') : [String(v)];

/**
 * The metadata a client may store when it updates itself (RFC 7592 §2.2), by {@link METADATA_RULES}:
 * `next` is the validated request, `sent` the member names the request carried. Throws
 * `invalid_client_metadata` naming the member when the update would widen what the client may do
 * or remove a restriction.
 *
 * @param serverTtl the default lifetime, the ceiling of a client without its own
 */
export function selfUpdate(
  current: ClientMetadata,
  next: ClientMetadata,
  sent: ReadonlySet<string>,
  serverTtl: number,
): ClientMetadata {
  const out: Record<string, unknown> = { ...next };
  const cur = current as unknown as Record<string, unknown>;
  for (const [member, rule] of Object.entries(METADATA_RULES) as [keyof ClientMetadata, MemberRule][]) {
    const now = cur[member];
    const then = out[member];
    switch (rule.kind) {
      case 'grant': {
        const allowed = new Set(asList(now) ?? []);
        const extra = (asList(then) ?? []).find((x) => !allowed.has(x));
        if (extra !== undefined)
          throw refuse(member, `${JSON.stringify(extra.slice(0, 100))} can only be added by an administrator`);
        break;
      }
      case 'constraint-set': {
        if (!sent.has(member)) {
          if (now === undefined) delete out[member];
          else out[member] = now;
          break;
        }
        if (now === undefined) break; // a first restriction narrows "everything"
        const allowed = new Set(now as string[]);
        const extra = ((then as string[] | undefined) ?? []).find((x) => !allowed.has(x));
        if (then === undefined || extra !== undefined) {
          throw refuse(
            member,
            `${extra !== undefined ? JSON.stringify(extra.slice(0, 100)) : 'removing the restriction'} can only be done by an administrator`,
          );
        }
        break;
      }
      case 'administered': {
        if (!sent.has(member) || sameList(asList(now), asList(then))) {
          if (now === undefined) delete out[member];
          else out[member] = now;
          break;
        }
        throw refuse(member, 'only an administrator changes them (they both grant and restrict)');
      }
      case 'ceiling': {
        const ceiling = (now as number | undefined) ?? serverTtl;
        if (then === undefined) {
          if (now !== undefined) out[member] = now;
        } else if ((then as number) > ceiling) throw refuse(member, 'can only be raised by an administrator');
        break;
      }
      case 'constraint-flag': {
        if (now === true && then !== true) {
          if (sent.has(member)) throw refuse(member, 'can only be turned off by an administrator');
          out[member] = true;
        }
        break;
      }
      case 'own':
      case 'derived':
        break;
    }
  }
  return out as unknown as ClientMetadata;
}

function sameList(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = [...new Set(a ?? [])].sort();
  const y = [...new Set(b ?? [])].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
