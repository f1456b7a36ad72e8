import { createHash } from 'node:crypto';
import { type AuthFailureReason, type Clock, epochSeconds, isSpiffeId } from '@latchkey/protocol';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import type { FederationIssuerRecord, FederationRuleRecord, ReplayStore } from '../storage/ports.ts';
import type { FederationKeys } from './federation_keys.ts';
import type { FederationRegistry } from './federation_registry.ts';
import { checkRules } from './federation_rules.ts';

/** How the assertion was presented: RFC 7523 (`jwt-bearer`, an assertion or a grant) or a SPIFFE JWT-SVID. */
export type AssertionKind = 'jwt-bearer' | 'jwt-spiffe';

/** Why a federated assertion was refused: the audit reason, and a description fit for the client. */
export class FederationError extends Error {
  readonly reason: AuthFailureReason;
  /** What the audit may record besides the reason (never the token). */
  readonly detail: Record<string, string>;
  constructor(reason: AuthFailureReason, message: string, detail: Record<string, string> = {}) {
    super(message);
    this.reason = reason;
    this.detail = detail;
  }
}

/** A verified federated identity: who vouched, which rule mapped it, to which client. */
export interface FederatedIdentity {
  issuer: FederationIssuerRecord;
  rule: FederationRuleRecord;
  claims: JWTPayload;
}

/** What `latchkey federation test` shows of a token: its issuer, each rule's verdict, and the signature's. */
export interface FederationExplanation {
  issuer: string | null;
  subject: string | null;
  checks: { rule: string; client_id: string; matched: boolean; failed: string[] }[];
  match: { rule: string; client_id: string } | null;
  /** Whether the signature, times and replay were checked and held (the rules alone say nothing of them). */
  verified: boolean;
  error: { reason: AuthFailureReason; description: string } | null;
}

export interface FederatedAssertionsDeps {
  clock: Clock;
  /** This IdP's issuer identifier and token endpoint: the audiences a rule without its own accepts. */
  audiences: readonly string[];
  clockSkew: number;
  /** Longest an assertion may still be valid for (its `exp` from now). */
  maxLifetime: number;
  registry: FederationRegistry;
  keys: Pick<FederationKeys, 'keySet'>;
  replay: Pick<ReplayStore, 'useOnce'>;
}

const unverified = (assertion: string): { payload: JWTPayload; header: Record<string, unknown> } => {
  try {
    return { payload: decodeJwt(assertion), header: decodeProtectedHeader(assertion) as Record<string, unknown> };
  } catch {
    throw new FederationError('malformed_credentials', 'the assertion is not a JWT');
  }
};

/**
 * How an assertion given as a grant (RFC 7523 §2.1) is read: a JWT-SVID when it names no `iss`
 * and its `sub` is a SPIFFE ID (draft-ietf-oauth-spiffe-client-auth), an issuer's JWT otherwise.
 */
export function grantAssertionKind(assertion: string): AssertionKind {
  try {
    const p = decodeJwt(assertion);
    return p.iss === undefined && typeof p.sub === 'string' && isSpiffeId(p.sub) ? 'jwt-spiffe' : 'jwt-bearer';
  } catch {
    return 'jwt-bearer';
  }
}

/**
 * SPIFFE Trust Domain and Bundle §4.2: a bundle's keys say what they are for in `use` —
 * `jwt-svid` keys verify JWT-SVIDs, `x509-svid` ones are CA certificates and are left out.
 */
function jwtSvidKeys(set: JSONWebKeySet): JSONWebKeySet {
  return {
    keys: set.keys.filter((k) => k.use === undefined || k.use === 'jwt-svid').map(({ use: _use, ...k }) => k),
  };
}

/** The trust domain of a SPIFFE ID (`spiffe://<td>/...`). */
const trustDomainOf = (id: string): string => new URL(id).host;

/**
 * Platform tokens as client credentials (RFC 7523 §2.2 / §2.1 and draft-ietf-oauth-spiffe-client-auth):
 * a Kubernetes service-account token, a CI system's OIDC token, any trusted issuer's JWT, or a
 * JWT-SVID, mapped to a registered client by the administrator's rules — no secret on the workload.
 */
export class FederatedAssertions {
  private readonly d: FederatedAssertionsDeps;

  constructor(deps: FederatedAssertionsDeps) {
    this.d = deps;
  }

  /** Whether a `jwt-bearer` assertion comes from a trusted issuer (and not from a client signing its own). */
  isFederated(assertion: string): boolean {
    // Every private_key_jwt request asks this: no JWT decoding unless some issuer is trusted by iss.
    if (!this.d.registry.hasOidcIssuers) return false;
    try {
      const iss = decodeJwt(assertion).iss;
      return typeof iss === 'string' && this.d.registry.byIss(iss) !== undefined;
    } catch {
      return false;
    }
  }

  /** The issuer an assertion names, and the rule its (not yet verified) claims would match. */
  candidate(assertion: string, kind: AssertionKind): { issuer: FederationIssuerRecord; rule: FederationRuleRecord } {
    return this.mapped(unverified(assertion).payload, kind);
  }

  private mapped(
    payload: JWTPayload,
    kind: AssertionKind,
  ): { issuer: FederationIssuerRecord; rule: FederationRuleRecord } {
    const issuer = this.issuerOf(payload, kind);
    const { match, checks } = checkRules(
      this.d.registry.rulesOf(issuer.name),
      payload as Record<string, unknown>,
      this.d.audiences,
    );
    if (!match) {
      const audienceOnly = checks.some((c) => c.audienceOnly);
      throw new FederationError(
        audienceOnly ? 'federation_wrong_audience' : 'federation_no_rule',
        audienceOnly
          ? 'the assertion is not audienced to this authorization server as the federation rule requires'
          : 'no federation rule maps this assertion to a client',
        {
          issuer: issuer.name,
          why: checks
            .map((c) => `${c.rule}: ${c.failed.join('; ')}`)
            .join(' | ')
            .slice(0, 500),
        },
      );
    }
    return { issuer, rule: match };
  }

  /**
   * Verifies the assertion and maps it: a trusted issuer, a key of its set (fetched again once for
   * an unknown kid: a rotation), an allowed algorithm, `exp` present and not past (nor further
   * ahead than `maxLifetime`), `nbf`/`iat` not ahead, a rule that holds on the verified claims, and
   * — when the issuer is single-use — not seen before (RFC 7523 §3 item 7, across replicas).
   */
  async verify(assertion: string, kind: AssertionKind): Promise<FederatedIdentity> {
    const parsed = unverified(assertion);
    const { issuer, rule } = this.mapped(parsed.payload, kind);
    const { header } = parsed;
    if (typeof header.alg !== 'string' || !issuer.algorithms.includes(header.alg))
      throw new FederationError('assertion_invalid', `algorithm ${String(header.alg)} is not allowed for this issuer`, {
        issuer: issuer.name,
      });
    let payload: JWTPayload;
    const verifyWith = async (refresh: boolean) => {
      let keys;
      try {
        keys = await this.d.keys.keySet(issuer, refresh);
      } catch (err) {
        throw new FederationError('issuer_keys_unavailable', "the issuer's keys could not be obtained", {
          issuer: issuer.name,
          why: (err as Error).message.slice(0, 200),
        });
      }
      return jwtVerify(assertion, createLocalJWKSet(issuer.kind === 'spiffe' ? jwtSvidKeys(keys) : keys), {
        algorithms: issuer.algorithms,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: this.d.clockSkew,
        currentDate: new Date(this.d.clock.now()),
      });
    };
    try {
      try {
        ({ payload } = await verifyWith(false));
      } catch (err) {
        // A key the issuer added since the set was fetched (a rotation): once more, fresh.
        if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
        ({ payload } = await verifyWith(true));
      }
    } catch (err) {
      if (err instanceof FederationError) throw err;
      if (err instanceof joseErrors.JWTExpired)
        throw new FederationError('assertion_expired', 'the assertion has expired', { issuer: issuer.name });
      if (err instanceof joseErrors.JOSEError)
        throw new FederationError('assertion_invalid', `the assertion was rejected (${err.code})`, {
          issuer: issuer.name,
        });
      throw err;
    }
    const now = epochSeconds(this.d.clock);
    const exp = payload.exp as number;
    if (exp > now + this.d.maxLifetime + this.d.clockSkew)
      throw new FederationError('assertion_expired', `the assertion is valid for more than ${this.d.maxLifetime}s`, {
        issuer: issuer.name,
      });
    if (typeof payload.iat === 'number' && payload.iat > now + this.d.clockSkew)
      throw new FederationError('assertion_invalid', 'the assertion was issued in the future', { issuer: issuer.name });
    // The rule again, now on claims the signature vouches for.
    const { match } = checkRules([rule], payload as Record<string, unknown>, this.d.audiences);
    if (!match) throw new FederationError('federation_no_rule', 'no federation rule maps this assertion to a client');
    if (issuer.singleUse) {
      // The jti when there is one (Kubernetes and CI tokens have it; JWT-SVIDs may not), else the token's hash.
      const id =
        typeof payload.jti === 'string' && payload.jti.length <= 256
          ? payload.jti
          : createHash('sha256').update(assertion).digest('base64url');
      if (!(await this.d.replay.useOnce(`federated:${issuer.name}:${id}`, exp + this.d.clockSkew)))
        throw new FederationError('assertion_replayed', 'the assertion was already used', { issuer: issuer.name });
    }
    return { issuer, rule, claims: payload };
  }

  /** Which rule a token matches and why the others do not, and whether it verifies (without using it up). */
  async explain(token: string): Promise<FederationExplanation> {
    let payload: JWTPayload;
    try {
      payload = unverified(token).payload;
    } catch (err) {
      const e = err as FederationError;
      return {
        issuer: null,
        subject: null,
        checks: [],
        match: null,
        verified: false,
        error: { reason: e.reason, description: e.message },
      };
    }
    const kind: AssertionKind =
      typeof payload.sub === 'string' &&
      isSpiffeId(payload.sub) &&
      (typeof payload.iss !== 'string' || !this.d.registry.byIss(payload.iss))
        ? 'jwt-spiffe'
        : 'jwt-bearer';
    const base = {
      issuer: typeof payload.iss === 'string' ? payload.iss : null,
      subject: typeof payload.sub === 'string' ? payload.sub : null,
    };
    let issuer: FederationIssuerRecord;
    try {
      issuer = this.issuerOf(payload, kind);
    } catch (err) {
      const e = err as FederationError;
      return { ...base, checks: [], match: null, verified: false, error: { reason: e.reason, description: e.message } };
    }
    const { match, checks } = checkRules(
      this.d.registry.rulesOf(issuer.name),
      payload as Record<string, unknown>,
      this.d.audiences,
    );
    let error: FederationExplanation['error'] = null;
    let verified = false;
    try {
      // Verified as at the token endpoint, but never marked used: a test does not spend the token.
      await new FederatedAssertions({ ...this.d, replay: { useOnce: async () => true } }).verify(token, kind);
      verified = true;
    } catch (err) {
      if (err instanceof FederationError) error = { reason: err.reason, description: err.message };
      else throw err;
    }
    return {
      ...base,
      checks: checks.map((c) => ({ rule: c.rule, client_id: c.clientId, matched: c.matched, failed: c.failed })),
      match: match ? { rule: match.name, client_id: match.clientId } : null,
      verified,
      error,
    };
  }

  private issuerOf(payload: JWTPayload, kind: AssertionKind): FederationIssuerRecord {
    if (kind === 'jwt-spiffe') {
      // draft-ietf-oauth-spiffe-client-auth §3.1: the SPIFFE ID in sub names the trust domain; iss is not used.
      if (typeof payload.sub !== 'string' || !isSpiffeId(payload.sub))
        throw new FederationError('malformed_credentials', 'a JWT-SVID names a SPIFFE ID in sub');
      const td = trustDomainOf(payload.sub);
      const issuer = this.d.registry.byTrustDomain(td);
      if (!issuer)
        throw new FederationError('federation_unknown_issuer', 'the SPIFFE trust domain is not trusted', {
          issuer: td.slice(0, 200),
        });
      return issuer;
    }
    const iss = payload.iss;
    const issuer = typeof iss === 'string' ? this.d.registry.byIss(iss) : undefined;
    if (!issuer)
      throw new FederationError('federation_unknown_issuer', 'the assertion issuer is not trusted', {
        issuer: String(iss ?? '').slice(0, 200),
      });
    return issuer;
  }
}
