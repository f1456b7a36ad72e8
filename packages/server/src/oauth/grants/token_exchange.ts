import {
  actorClaim,
  type Clock,
  epochSeconds,
  serviceSpiffeId,
  TOKEN_EXCHANGE_GRANT,
  TOKEN_TYPES,
} from '@latchkey/protocol';
import { jsonDepth } from '@latchkey/policy';
import { invalidRequest, OAuthError } from '../../errors.ts';
import type { ServerEvents } from '../../events.ts';
import { param } from '../../http/form.ts';
import type { KeyRing } from '../../keys/key_ring.ts';
import type { TokenPolicy } from '../../policy/token_policy.ts';
import type { TokenStatusRecord, UserStore } from '../../storage/ports.ts';
import { mintAccessToken, type TokenStatusSource } from '../access_token.ts';
import { isAbsoluteUri } from '../audience.ts';
import { isValidScope } from '../scope.ts';
import { checkOwnTransactionToken, readSubjectToken, type SubjectTokenDeps } from '../subject_token.ts';
import { mintTransactionToken } from '../transaction_token.ts';
import type { GrantHandler } from './types.ts';

export interface TokenExchangeDeps extends SubjectTokenDeps {
  clock: Clock;
  accessTokenTtl: number;
  /** Most services `act` may name (one more is refused). */
  maxActDepth: number;
  txnTokenTtl: number;
  keys: SubjectTokenDeps['keys'] & Pick<KeyRing, 'signAccessToken' | 'signDocument'>;
  /** Token Status List references in tokens (absent when turned off). */
  statusLists?: TokenStatusSource | undefined;
  users: Pick<UserStore, 'getUser'>;
  tokenPolicy: Pick<TokenPolicy, 'allowsExchange'>;
  events: ServerEvents;
}

/** Largest `request_context` / `request_details` (characters of JSON) and their nesting. */
const CONTEXT_LIMIT = 4096;
const CONTEXT_DEPTH = 8;

/** A JSON object parameter of a Txn-Token request, bounded. */
function jsonObject(value: string | undefined, name: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value.length > CONTEXT_LIMIT) throw invalidRequest(`${name} is longer than ${CONTEXT_LIMIT} characters`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw invalidRequest(`${name} is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalidRequest(`${name} must be a JSON object`);
  if (jsonDepth(parsed, CONTEXT_DEPTH) > CONTEXT_DEPTH)
    throw invalidRequest(`${name} nests deeper than ${CONTEXT_DEPTH} levels`);
  return parsed as Record<string, unknown>;
}

/**
 * RFC 8693 token exchange at /token, and the Transaction Tokens draft's profile of it. An
 * authenticated service presents a token of the subject it acts for (a Latchkey access token, an
 * ID token, or a Transaction Token) and asks for
 * - an **access token** for an audience (`audience` or `resource`): `sub` stays the subject's,
 *   `client_id` becomes the acting service, which goes on top of the `act` chain (§4.1), at most
 *   `maxActDepth` deep; scope a subset of the subject token's; no longer-lived than it; or
 * - a **Transaction Token** (`requested_token_type=…:txn_token`, `audience` = the trust domain,
 *   `scope` required): a new transaction, or — from a Transaction Token — a replacement that keeps
 *   its `txn`, `sub`, `aud`, `tctx` and `rctx` and records the previous requester in `act`.
 *
 * Cedar decides (`Latchkey::Action::"exchange"`: the acting client, the audience, the subject and
 * chain in the context); nothing is delegated without a permit. Errors per RFC 8693 §2.2.2:
 * `invalid_request` for a bad, expired or revoked subject or actor token, `invalid_target` for an
 * audience the policy refuses, `invalid_scope` for a wider scope.
 */
export function tokenExchangeGrant(given: TokenExchangeDeps): GrantHandler {
  // Subject tokens verified once: the same user token is exchanged for every request a gateway serves.
  const deps: TokenExchangeDeps = { ...given, verified: given.verified ?? new Map() };
  const spiffeOf = (clientId: string) => serviceSpiffeId(deps.trustDomain, clientId);
  return {
    grantType: TOKEN_EXCHANGE_GRANT,
    multiValued: ['resource', 'audience'],
    async handle({ request, form, client, authMethod }) {
      if (!client.metadata.grant_types.includes(TOKEN_EXCHANGE_GRANT))
        throw new OAuthError('unauthorized_client', 'client is not registered for token exchange');
      const now = epochSeconds(deps.clock);
      const subjectToken = param(form, 'subject_token');
      const subjectType = param(form, 'subject_token_type');
      if (!subjectToken || !subjectType) throw invalidRequest('subject_token and subject_token_type are required');
      const requested = param(form, 'requested_token_type') ?? TOKEN_TYPES.access_token;
      if (requested !== TOKEN_TYPES.access_token && requested !== TOKEN_TYPES.txn_token)
        throw invalidRequest(`requested_token_type must be ${TOKEN_TYPES.access_token} or ${TOKEN_TYPES.txn_token}`);
      const txn = requested === TOKEN_TYPES.txn_token;

      const actorToken = param(form, 'actor_token');
      const actorType = param(form, 'actor_token_type');
      // §2.1: actor_token_type is required with actor_token and must not come without it.
      if ((actorToken === undefined) !== (actorType === undefined))
        throw invalidRequest('actor_token and actor_token_type go together');
      const subject = await readSubjectToken(deps, 'subject_token', subjectToken, subjectType, now);
      if (actorToken !== undefined) {
        // The acting party is the authenticated client: an actor token must stand for it.
        const actor = await readSubjectToken(deps, 'actor_token', actorToken, actorType as string, now);
        if (actor.sub !== client.clientId)
          throw invalidRequest('actor_token does not stand for the authenticated client');
      }

      // Who the subject is: a user (checked against the directory) or a service.
      const user =
        subject.type === 'id_token' || subject.sub !== subject.clientId
          ? await deps.users.getUser(subject.sub)
          : undefined;
      const kind: 'user' | 'service' = user ? 'user' : 'service';
      if (kind === 'service' && subject.type === 'id_token') throw invalidRequest('subject_token names no user');
      if (user?.disabled) throw invalidRequest('subject_token is revoked (its user is disabled)');

      // Targets: RFC 8693 `audience` (logical names) and RFC 8707 `resource` (URIs), one of them.
      const targets = [...(form.get('audience') ?? []), ...(form.get('resource') ?? [])];
      if (targets.length === 0) throw invalidRequest('name the audience (audience or resource)');
      if (targets.length > 1) throw new OAuthError('invalid_target', 'one audience per exchange');
      const audience = targets[0] as string;
      if (txn ? audience !== deps.trustDomain : !isAbsoluteUri(audience))
        throw new OAuthError(
          'invalid_target',
          txn
            ? `a Transaction Token's audience is the trust domain, ${deps.trustDomain}`
            : 'audience must be an absolute URI',
        );

      // Scope: a subset of the subject token's (RFC 8693 §2.1; the draft's Scope Processing).
      const asked = param(form, 'scope');
      if (asked !== undefined && !isValidScope(asked)) throw new OAuthError('invalid_scope', 'scope is malformed');
      if (txn && !asked) throw invalidRequest('scope is required for a Transaction Token');
      const scope = asked !== undefined ? [...new Set(asked.split(' '))] : subject.scope;
      const wider = scope.find((s) => !subject.scope.includes(s));
      if (wider !== undefined)
        throw new OAuthError('invalid_scope', `scope ${JSON.stringify(wider)} is not in the subject token's scope`);

      // The chain: services that acted before, newest first, and this one on top.
      const prior = subject.chain;
      if (prior.length + 1 > deps.maxActDepth)
        throw invalidRequest(`the chain would name ${prior.length + 1} services; at most ${deps.maxActDepth} may act`);
      const roles = subject.roles ?? user?.roles ?? [];
      const groups = subject.groups ?? user?.groups ?? [];
      const decision = deps.tokenPolicy.allowsExchange(client, audience, {
        subject: {
          sub: subject.sub,
          kind,
          roles,
          groups,
          audiences: subject.audiences,
          client: subject.clientId,
        },
        actors: prior,
        requestedTokenType: txn ? 'txn_token' : 'access_token',
      });
      if (!decision.allowed)
        throw new OAuthError(
          'invalid_target',
          `the policy does not let ${client.clientId} act for this subject toward ${audience}${decision.reasons.length ? ` (${decision.reasons.join(', ')})` : ''}`,
        );

      // No longer-lived than the subject token (§2.1 leaves it to the server; a chain never outlives its start).
      const left = subject.exp - now;
      const origin = subject.originJti ?? subject.jti;
      const chain = [client.clientId, ...prior];
      /** The one `token.exchanged` event, with the whole chain (and the transaction, when there is one). */
      const issued = (
        t: { jti: string; exp: number; aud: string; scope: string | null; txn: string | undefined },
        statusEntry: TokenStatusRecord | undefined,
      ) =>
        deps.events.emit(
          'token.exchanged',
          {
            actor: client.clientId,
            subject: subject.sub,
            client_id: client.clientId,
            outcome: 'success',
            request_id: request.id,
            source_ip: request.ip,
            detail: {
              subject_token_type: TOKEN_TYPES[subject.type],
              requested_token_type: requested,
              chain,
              ...(t.txn ? { txn: t.txn } : {}),
              jti: t.jti,
              ...(origin ? { origin_jti: origin } : {}),
              aud: t.aud,
              scope: t.scope,
              exp: t.exp,
              policies: decision.reasons,
              auth_method: authMethod,
            },
          },
          statusEntry,
        );
      if (txn) {
        const ttl = Math.min(deps.txnTokenTtl, left);
        if (ttl < 1) throw invalidRequest('subject_token has expired');
        const replaced = subject.txn;
        const { token, claims, statusEntry } = await mintTransactionToken(
          deps,
          deps.issuer,
          {
            clientId: client.clientId,
            trustDomain: deps.trustDomain,
            sub: subject.sub,
            scope: scope.join(' '),
            requester: spiffeOf(client.clientId),
            ttl,
            txn: replaced?.txn,
            // A replacement keeps what it asserted (the draft: never widened, txn/sub/aud unchanged).
            tctx: replaced ? replaced.tctx : jsonObject(param(form, 'request_details'), 'request_details'),
            rctx: replaced ? replaced.rctx : jsonObject(param(form, 'request_context'), 'request_context'),
            act: actorClaim(prior),
            originJti: origin,
          },
          now,
        );
        await issued(
          { jti: claims.jti, exp: claims.exp, aud: deps.trustDomain, scope: claims.scope, txn: claims.txn },
          statusEntry,
        );
        return {
          access_token: token,
          issued_token_type: TOKEN_TYPES.txn_token,
          token_type: 'N_A',
          expires_in: ttl,
        };
      }
      const ttl = Math.min(client.metadata.access_token_ttl ?? deps.accessTokenTtl, left);
      if (ttl < 1) throw invalidRequest('subject_token has expired');
      // A service calling on within a transaction carries its Txn-Token here too (the SDK's token
      // client does): the exchange is then recorded under that transaction, when it is the same subject's.
      const carried = request.headers['txn-token'];
      const within = typeof carried === 'string' ? checkOwnTransactionToken(deps, carried, now) : undefined;
      const txnId = within?.ok && within.claims.sub === subject.sub ? within.claims.txn : undefined;
      const { token, claims, statusEntry } = await mintAccessToken(
        deps,
        deps.issuer,
        {
          subject: subject.sub,
          clientId: client.clientId,
          audience,
          ttl,
          scope: scope.length > 0 ? scope.join(' ') : undefined,
          roles: roles.length > 0 ? roles : undefined,
          groups: kind === 'user' && groups.length > 0 ? groups : undefined,
          attributes: subject.attributes,
          act: actorClaim(chain),
          originJti: origin,
        },
        now,
      );
      await issued(
        { jti: claims.jti, exp: claims.exp, aud: audience, scope: claims.scope ?? null, txn: txnId },
        statusEntry,
      );
      return {
        access_token: token,
        issued_token_type: TOKEN_TYPES.access_token,
        token_type: 'Bearer',
        expires_in: ttl,
        ...(claims.scope ? { scope: claims.scope } : {}),
      };
    },
  };
}
