import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyRequest } from 'fastify';
import { aboutUser, type ServerEvents } from '../events.ts';
import type { RefreshTokens } from '../oauth/refresh_tokens.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type {
  AuthorizationCodeStore,
  ClientRecord,
  ConsentRecord,
  ConsentStore,
  RefreshTokenStore,
} from '../storage/ports.ts';

export interface ConsentDeps {
  clock: Clock;
  store: ConsentStore;
  families: Pick<RefreshTokenStore, 'listRefreshFamilies'>;
  codes: Pick<AuthorizationCodeStore, 'clientCodeTokens'>;
  refresh: Pick<RefreshTokens, 'revokeFamily'>;
  revocations: Pick<RevocationLog, 'revokeToken'>;
  events: ServerEvents;
  /** How long an access token may live: the revocation entries of a client's tokens outlast them. */
  maxAccessTokenTtl: number;
}

/** What a client asks of a user at /authorize: the scopes and resources consent is about. */
export interface ConsentAsk {
  scope: string | null;
  resource: readonly string[];
  /** `prompt=consent`: ask even when the user agreed before (OpenID Connect Core §3.1.2.1). */
  prompt?: boolean;
}

const words = (scope: string | null): string[] => (scope ? scope.split(' ').filter(Boolean) : []);
const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])];

/**
 * Users' consent to third-party clients (`consent_required` in the client's registration): a
 * client of the estate's own (the default) is never asked about; a third-party one gets a code only
 * once the user agreed to every scope and resource it asks for. Agreements are remembered per user
 * and client and only grow (a later agreement adds to the earlier one); withdrawing one revokes
 * what the client holds for the user.
 */
export class Consents {
  private readonly deps: ConsentDeps;

  constructor(deps: ConsentDeps) {
    this.deps = deps;
  }

  /** Whether the user must be asked before `client` gets a code for `ask`. */
  async needed(client: ClientRecord | undefined, sub: string, ask: ConsentAsk): Promise<boolean> {
    if (!client?.metadata.consent_required) return false;
    if (ask.prompt) return true;
    const given = await this.deps.store.getConsent(sub, client.clientId);
    if (!given) return true;
    const scopes = new Set(words(given.scope));
    return !words(ask.scope).every((s) => scopes.has(s)) || !ask.resource.every((r) => given.resource.includes(r));
  }

  /** The user agreed: remembered (added to what they agreed before), audited. */
  async grant(request: FastifyRequest, sub: string, clientId: string, ask: ConsentAsk): Promise<void> {
    const now = epochSeconds(this.deps.clock);
    const before = await this.deps.store.getConsent(sub, clientId);
    const scope = union(words(before?.scope ?? null), words(ask.scope));
    const consent: ConsentRecord = {
      sub,
      clientId,
      scope: scope.length > 0 ? scope.join(' ') : null,
      resource: union(before?.resource ?? [], ask.resource),
      grantedAt: before?.grantedAt ?? now,
      updatedAt: now,
    };
    const event = this.deps.events.stage('user.consent_granted', {
      ...aboutUser(`User::${JSON.stringify(sub)}`, sub, request),
      client_id: clientId,
      detail: { scope: ask.scope, resource: [...ask.resource] },
    });
    await this.deps.store.saveConsent(consent, [event]);
    this.deps.events.committed(event);
  }

  /** The user refused: audited (nothing is remembered, so the next sign-in asks again). */
  denied(request: FastifyRequest, sub: string, clientId: string, ask: ConsentAsk): Promise<void> {
    return this.deps.events.emit('user.consent_denied', {
      ...aboutUser(`User::${JSON.stringify(sub)}`, sub, request),
      outcome: 'failure',
      reason: 'access_denied',
      client_id: clientId,
      detail: { scope: ask.scope, resource: [...ask.resource] },
    });
  }

  list(sub: string): Promise<ConsentRecord[]> {
    return this.deps.store.listConsents(sub);
  }

  /**
   * Withdraws a consent: the client's sign-ins for the user (refresh token families) and every
   * access token they and its codes gave are revoked, on the feed, so services refuse them within a
   * second. False when there was none.
   */
  async withdraw(request: FastifyRequest, actor: string, sub: string, clientId: string): Promise<boolean> {
    const now = epochSeconds(this.deps.clock);
    const families = (await this.deps.families.listRefreshFamilies(sub)).filter(
      (f) => f.clientId === clientId && f.revokedAt === null,
    );
    const jtis = await this.deps.codes.clientCodeTokens(sub, clientId);
    const event = this.deps.events.stage('user.consent_revoked', {
      ...aboutUser(actor, sub, request),
      client_id: clientId,
      detail: { families: families.length, tokens: jtis.length },
    });
    if (!(await this.deps.store.deleteConsent(sub, clientId, [event]))) return false;
    this.deps.events.committed(event);
    for (const f of families) await this.deps.refresh.revokeFamily(f, now, 'consent_revoked');
    for (const jti of jtis)
      await this.deps.revocations.revokeToken({
        jti,
        exp: now + this.deps.maxAccessTokenTtl,
        client_id: clientId,
        sub,
      });
    return true;
  }
}
