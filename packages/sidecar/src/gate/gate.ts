import type { X509Certificate } from 'node:crypto';
import {
  type AccessTokenClaims,
  parseCompactJws,
  TXN_TOKEN_HEADER,
  type TransactionTokenClaims,
} from '@latchkey/protocol';
import {
  type AuditQueue,
  type Authorizer,
  authenticateBearer,
  type TokenClient,
  TokenClientError,
  type Verifier,
  VerifyError,
} from '@latchkey/sdk';
import type { SidecarConfig } from '../config/sidecar_config_schema.ts';
import type { RequestFacts } from '../routes/request_facts.ts';
import { headerValue } from '../routes/request_facts.ts';
import { resolve, type RouteTable, UnresolvableRequest } from '../routes/route_table.ts';
import type { SidecarMetrics } from '../ops/sidecar_metrics.ts';
import { identityHeaders } from './identity_headers.ts';

/** Why a request was let through or not (metrics label and audit reason). */
export type GateReason =
  | 'allowed'
  | 'public'
  | 'no_route'
  | 'no_credentials'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'peer_not_allowed'
  | 'unresolvable'
  | 'denied'
  | 'invalid_txn_token'
  | 'txn_unavailable';

export type GateOutcome =
  | { allow: true; reason: GateReason; route: string; identity: Record<string, string> }
  | {
      allow: false;
      reason: GateReason;
      route: string;
      status: 400 | 401 | 403 | 503;
      headers: Record<string, string>;
      body: { error: string; error_description: string };
    };

/** The service identity in a Latchkey workload SVID: spiffe://<trust domain>/svc/<client id>. */
const SVC = /^spiffe:\/\/[^/]+\/svc\/([^/]+)$/;

/**
 * The client id of an mTLS peer whose certificate is still worth something: a Latchkey workload
 * SVID (`…/svc/<client id>`) of a client not revoked since the certificate was issued. Undefined
 * for any other peer. `peer` is the SPIFFE ID of a verified certificate; `certificate` that
 * certificate (its issue time decides against a client revocation).
 */
export function usableWorkload(
  peer: string | undefined,
  certificate: X509Certificate | undefined,
  verifier: Pick<Verifier, 'clientRevoked'>,
): string | undefined {
  const id = peer ? SVC.exec(peer)?.[1] : undefined;
  // A client revoked after its certificate was issued: the certificate is no longer worth anything.
  const issuedAt = certificate ? Math.floor(Date.parse(certificate.validFrom) / 1000) : 0;
  return id && !verifier.clientRevoked(id, issuedAt) ? id : undefined;
}

export interface GateDeps {
  config: Pick<SidecarConfig, 'unmatched'>;
  routes: RouteTable;
  verifier: Pick<Verifier, 'verify' | 'clientRevoked' | 'verifyTransactionToken'>;
  /** Mints Transaction Tokens for `transaction_token: mint` routes (the sidecar's own client, registered for token exchange). */
  tokens?: Pick<TokenClient, 'transactionToken'>;
  authorizer: Pick<Authorizer, 'authorize'>;
  audit: Pick<AuditQueue, 'record'>;
  metrics: SidecarMetrics;
  realm: string;
}

type Refusal = Extract<GateOutcome, { allow: false }>;

const deny = (
  reason: GateReason,
  route: string,
  status: 400 | 401 | 403 | 503,
  error: string,
  description: string,
): Refusal => ({
  allow: false,
  reason,
  route,
  status,
  headers: {},
  body: { error, error_description: description },
});

/**
 * The one decision every mode asks for: who is calling (a verified bearer token — bound to the
 * peer certificate when it says so — or the mTLS peer's workload identity), which route this is,
 * and whether Cedar permits the route's action on its resource. Verification and decisions are
 * local (the SDK's verifier and authorizer, kept fresh by the IdP's feeds); decisions are audited
 * by the authorizer, refusals before a decision here.
 */
export class Gate {
  private readonly deps: GateDeps;

  constructor(deps: GateDeps) {
    this.deps = deps;
  }

  /** `peerCertificate`: the client certificate of the connection (this one's, or the one Envoy reports). */
  async check(facts: RequestFacts, peerCertificate?: X509Certificate, mode = 'proxy'): Promise<GateOutcome> {
    const outcome = await this.decide(facts, peerCertificate);
    this.deps.metrics.requests.inc({ mode, route: outcome.route, outcome: outcome.reason });
    return outcome;
  }

  private async decide(facts: RequestFacts, peerCertificate: X509Certificate | undefined): Promise<GateOutcome> {
    const { routes, config, realm } = this.deps;
    const matched = routes.match(facts.method, facts.path);
    const routeName = matched?.route.name ?? 'unmatched';
    if (!matched && config.unmatched === 'deny') {
      this.report(facts, 'no matching route', undefined);
      return deny('no_route', routeName, 403, 'access_denied', 'no route allows this request');
    }
    const route = matched?.route;
    const auth = route?.auth ?? 'token';
    if (auth === 'none') return { allow: true, reason: 'public', route: routeName, identity: {} };

    let claims: AccessTokenClaims | undefined;
    let principal: string | undefined;
    const authorization = headerValue(facts.headers, 'authorization');
    const useToken = auth === 'token' || (auth === 'token_or_mtls' && authorization !== undefined);
    if (useToken) {
      const started = performance.now();
      const outcome = await authenticateBearer(
        authorization,
        { verifier: this.deps.verifier, realm, ...(route?.scope ? { scope: route.scope } : {}) },
        peerCertificate,
      );
      this.deps.metrics.verifySeconds.observe((performance.now() - started) / 1000);
      if (!outcome.claims) {
        const reason: GateReason =
          outcome.status === 403 ? 'insufficient_scope' : authorization ? 'invalid_token' : 'no_credentials';
        return {
          allow: false,
          reason,
          route: routeName,
          status: outcome.status ?? 401,
          headers: outcome.headers ?? {},
          body: outcome.body ?? { error: 'invalid_token', error_description: 'invalid token' },
        };
      }
      claims = outcome.claims;
    } else {
      const id = usableWorkload(facts.peer, peerCertificate, this.deps.verifier);
      if (!id) {
        this.report(facts, facts.peer ? 'peer is not a known workload' : 'no client certificate', undefined);
        return deny(
          'peer_not_allowed',
          routeName,
          401,
          'invalid_client',
          facts.peer ? 'the peer certificate names no usable workload' : 'a client certificate is required',
        );
      }
      principal = `Service::${JSON.stringify(id)}`;
    }

    // An inner hop: the Transaction Token that came with the request, verified (and forwarded unchanged).
    let transaction: TransactionTokenClaims | undefined;
    const txnMode = route?.spec.transaction_token;
    if (txnMode === 'require' || txnMode === 'optional') {
      const presented = headerValue(facts.headers, TXN_TOKEN_HEADER);
      if (presented === undefined && txnMode === 'require') {
        this.report(facts, 'no Transaction Token', claims);
        return deny('invalid_txn_token', routeName, 403, 'invalid_txn_token', 'a Transaction Token is required');
      }
      if (presented !== undefined) {
        try {
          transaction = await this.deps.verifier.verifyTransactionToken(presented);
        } catch (err) {
          const code = err instanceof VerifyError ? err.code : 'token_malformed';
          this.report(facts, `Transaction Token refused: ${code}`, claims);
          return deny('invalid_txn_token', routeName, 403, 'invalid_txn_token', code);
        }
      }
    }

    if (route?.action) {
      let resolved: ReturnType<typeof resolve>;
      try {
        resolved = resolve(route, facts, matched?.params ?? {});
      } catch (err) {
        if (!(err instanceof UnresolvableRequest)) throw err;
        this.report(facts, err.message, claims);
        return deny('unresolvable', routeName, 403, 'access_denied', err.message);
      }
      const started = performance.now();
      const result = this.deps.authorizer.authorize({
        principal: claims ?? (principal as string),
        action: route.action,
        resource: resolved.resource as NonNullable<typeof resolved.resource>,
        context: resolved.context,
        ...(transaction ? { transaction } : {}),
      });
      this.deps.metrics.decideSeconds.observe((performance.now() - started) / 1000);
      if (result.decision !== 'allow')
        return deny('denied', routeName, 403, 'access_denied', 'the policy denies this request');
    }
    const identity = identityHeaders(claims, facts.peer);
    if (transaction) identity['x-latchkey-txn'] = transaction.txn;
    if (txnMode === 'mint') {
      // The edge: a Transaction Token for this request, from the caller's own token.
      if (!claims || !authorization) {
        this.report(facts, 'a Transaction Token is minted from a bearer token only', claims);
        return deny('txn_unavailable', routeName, 403, 'access_denied', 'this route needs a bearer token');
      }
      const minted = await this.mint(facts, authorization, route?.spec.txn_scope ?? claims.scope ?? '');
      if ('allow' in minted) return { ...minted, route: routeName };
      identity[TXN_TOKEN_HEADER] = minted.token;
      identity['x-latchkey-txn'] = minted.txn;
    }
    return { allow: true, reason: 'allowed', route: routeName, identity };
  }

  /** A Transaction Token from the IdP for an allowed request, or the refusal to answer when there is none. */
  private async mint(
    facts: RequestFacts,
    authorization: string,
    scope: string,
  ): Promise<{ token: string; txn: string } | Refusal> {
    const tokens = this.deps.tokens;
    if (!tokens) throw new Error('a route mints Transaction Tokens but the gate has no token client');
    try {
      const token = await tokens.transactionToken({
        subjectToken: authorization.replace(/^bearer\s+/i, '').trim(),
        scope,
        requestContext: { req_ip: facts.sourceIp, ...(facts.peer ? { peer: facts.peer } : {}) },
        requestDetails: { method: facts.method.toUpperCase(), path: facts.path.slice(0, 512) },
      });
      const txn = parseCompactJws(token)?.payload.txn;
      return { token, txn: typeof txn === 'string' ? txn : '' };
    } catch (err) {
      // Refused by the IdP's policy: the caller may not start a transaction here. Unreachable: 503.
      const refused = err instanceof TokenClientError && err.status >= 400 && err.status < 500;
      this.report(facts, `no Transaction Token: ${(err as Error).message}`.slice(0, 256), undefined);
      return refused
        ? deny(
            'txn_unavailable',
            '',
            403,
            'access_denied',
            'the IdP did not issue a Transaction Token for this request',
          )
        : deny('txn_unavailable', '', 503, 'temporarily_unavailable', 'no Transaction Token could be obtained');
    }
  }

  /** A refusal that no decision of the authorizer records (no route, nothing to decide on). */
  private report(facts: RequestFacts, reason: string, claims: AccessTokenClaims | undefined): void {
    this.deps.audit.record({
      type: 'authz.decision',
      outcome: 'failure',
      actor: claims ? `Service::${JSON.stringify(claims.client_id)}` : facts.peer ? facts.peer : 'anonymous',
      target: `${facts.method.toUpperCase()} ${facts.path}`.slice(0, 256),
      reason,
      source_ip: facts.sourceIp,
    });
  }
}
