import { randomBytes, randomUUID } from 'node:crypto';
import type { AuditEvent } from '@latchkey/protocol';
import type { ServerEvents } from '../events.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { RefreshFamilyRecord, RefreshTokenRecord, RefreshTokenStore } from '../storage/ports.ts';
import { sha256 } from '../secrets.ts';

export interface RefreshPolicy {
  /** Seconds a sign-in may be kept alive; rotation never extends it. */
  lifetime: number;
  /** Seconds a token may lie unused. */
  idleTtl: number;
  /** Seconds after a rotation in which the old token again is a retry, not a theft. */
  reuseGrace: number;
}

export type RefreshUse =
  | { ok: true; family: RefreshFamilyRecord; token: RefreshTokenRecord }
  | { ok: false; why: 'unknown' | 'revoked' | 'expired' | 'retry' | 'other_client' | 'reused' };

/**
 * Refresh tokens as RFC 9700 §4.14.2 asks of them for public clients, and Latchkey for every
 * client: opaque (256 random bits), stored as a hash, rotated at every use, grouped in a family per
 * sign-in whose lifetime rotation never extends. A rotated token presented again after a short
 * grace means a copy exists: the whole family is revoked, with every access token it gave.
 */
export class RefreshTokens {
  private readonly store: RefreshTokenStore;
  private readonly revocations: Pick<RevocationLog, 'revokeToken'>;
  private readonly events: ServerEvents;
  readonly policy: RefreshPolicy;

  constructor(deps: {
    store: RefreshTokenStore;
    revocations: Pick<RevocationLog, 'revokeToken'>;
    events: ServerEvents;
    policy: RefreshPolicy;
  }) {
    this.store = deps.store;
    this.revocations = deps.revocations;
    this.events = deps.events;
    this.policy = deps.policy;
  }

  private newToken(familyId: string, now: number, familyExpiresAt: number, jti: { jti: string; exp: number }) {
    const value = randomBytes(32).toString('base64url');
    const record: RefreshTokenRecord = {
      tokenHash: sha256(value),
      familyId,
      issuedAt: now,
      expiresAt: Math.min(now + this.policy.idleTtl, familyExpiresAt),
      usedAt: null,
      jti: jti.jti,
      jtiExpiresAt: jti.exp,
    };
    return { value, record };
  }

  /** The first refresh token of a sign-in, beside the access token `jti`. */
  async start(
    grant: {
      clientId: string;
      sub: string;
      scope: string | null;
      resource: string[] | null;
      authTime: number;
      sid: string | null;
    },
    accessToken: { jti: string; exp: number },
    now: number,
  ): Promise<{ value: string; familyId: string }> {
    const family: RefreshFamilyRecord = {
      familyId: randomUUID(),
      ...grant,
      createdAt: now,
      expiresAt: now + this.policy.lifetime,
      revokedAt: null,
      revokedReason: null,
    };
    const first = this.newToken(family.familyId, now, family.expiresAt, accessToken);
    await this.store.createRefreshFamily(family, first.record);
    return { value: first.value, familyId: family.familyId };
  }

  /** Uses a presented refresh token once; a reuse past the grace revokes its family, audited as `token.refresh_reused`. */
  async use(
    presented: string,
    clientId: string,
    now: number,
    request: { id: string; ip: string },
  ): Promise<RefreshUse> {
    const found = await this.store.useRefreshToken(sha256(presented.slice(0, 512)), now);
    if (!found) return { ok: false, why: 'unknown' };
    const { family, token } = found;
    if (family.clientId !== clientId) return { ok: false, why: 'other_client' };
    if (family.revokedAt !== null) return { ok: false, why: 'revoked' };
    if (!found.first) {
      const rotatedAgo = now - (token.usedAt ?? now);
      if (rotatedAgo <= this.policy.reuseGrace) return { ok: false, why: 'retry' };
      let event: AuditEvent | undefined;
      const { changed } = await this.revokeFamily(family, now, 'reuse', (n) => {
        event = this.events.stage('token.refresh_reused', {
          actor: clientId,
          subject: family.sub,
          client_id: clientId,
          outcome: 'failure',
          reason: 'refresh_token_reused',
          request_id: request.id,
          source_ip: request.ip,
          detail: { family: family.familyId, revoked_tokens: n, rotated_seconds_ago: rotatedAgo },
        });
        return [event];
      });
      // A concurrent reuse may have revoked it first: then that one is the event.
      if (!changed) return { ok: false, why: 'revoked' };
      if (event) this.events.committed(event);
      return { ok: false, why: 'reused' };
    }
    if (family.expiresAt < now || token.expiresAt < now) return { ok: false, why: 'expired' };
    return { ok: true, family, token };
  }

  /** The next token of a family, beside the access token `jti`. */
  async rotate(family: RefreshFamilyRecord, accessToken: { jti: string; exp: number }, now: number): Promise<string> {
    const next = this.newToken(family.familyId, now, family.expiresAt, accessToken);
    await this.store.addRefreshToken(next.record);
    return next.value;
  }

  /**
   * RFC 7009 for a refresh token: its whole family (the sign-in) ends. `other_client` when it was
   * issued to another client (§2.1), `unknown` when it is not one of ours.
   */
  async revokePresented(
    presented: string,
    clientId: string,
    now: number,
  ): Promise<{ outcome: 'revoked' | 'other_client' | 'unknown'; family?: RefreshFamilyRecord }> {
    const found = await this.store.getRefreshToken(sha256(presented.slice(0, 512)));
    if (!found) return { outcome: 'unknown' };
    if (found.family.clientId !== clientId) return { outcome: 'other_client', family: found.family };
    await this.revokeFamily(found.family, now, 'revoked_by_client');
    return { outcome: 'revoked', family: found.family };
  }

  /** Revokes a family by its id (a replayed code's), if it exists. */
  async revokeFamilyById(familyId: string, now: number, reason: string): Promise<void> {
    const family = await this.store.getRefreshFamily(familyId);
    if (family) await this.revokeFamily(family, now, reason);
  }

  /**
   * Revokes a family and every unexpired access token it gave (each on the revocation feed, so
   * services drop them within a second). `changed` false when it was revoked already.
   */
  async revokeFamily(
    family: RefreshFamilyRecord,
    now: number,
    reason: string,
    audit: (revokedTokens: number) => AuditEvent[] = () => [],
  ): Promise<{ changed: boolean; revoked: number }> {
    const live = await this.store.liveRefreshFamilyTokens(family.familyId, now);
    if (!(await this.store.revokeRefreshFamily(family.familyId, now, reason, audit(live.length))))
      return { changed: false, revoked: 0 };
    for (const t of live)
      await this.revocations.revokeToken({ jti: t.jti, exp: t.expiresAt, client_id: family.clientId, sub: family.sub });
    return { changed: true, revoked: live.length };
  }
}
