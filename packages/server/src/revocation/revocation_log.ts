import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { AccessTokenClaims, KeyEventType } from '@latchkey/protocol';
import type { FeedStore, RevocationStore, WithAudit } from '../storage/ports.ts';

/**
 * Writes revocations and key lifecycle events to the feed log and answers "is this token
 * revoked?" for the IdP's own endpoints. Entries are keyed by what they cover (SECURITY.md): a
 * token by (issuer, jti), a client or subject by a not-before time, a key by kid — never by a
 * hash of a token's bytes — and expire when nothing they cover can still be valid.
 */
export class RevocationLog {
  private readonly store: Pick<FeedStore, 'appendFeedEvent'> & RevocationStore;
  private readonly issuer: string;
  private readonly coverSeconds: number;

  constructor(
    store: Pick<FeedStore, 'appendFeedEvent'> & RevocationStore,
    issuer: string,
    /** Longest lifetime of any token + clock skew: how long a not-before or key entry must live. */
    coverSeconds: number,
    clock: Clock,
  ) {
    this.store = store;
    this.issuer = issuer;
    this.coverSeconds = coverSeconds;
    this.now = () => epochSeconds(clock);
  }

  private readonly now: () => number;

  /** RFC 7009: the token's jti, until the token's own expiry. */
  async revokeToken(
    claims: Pick<AccessTokenClaims, 'jti' | 'exp' | 'client_id' | 'sub'>,
    audit?: WithAudit,
  ): Promise<number> {
    const e = await this.store.appendFeedEvent(
      {
        stream: 'revocations',
        kind: 'token',
        iss: this.issuer,
        ref: claims.jti,
        notBefore: null,
        expiresAt: claims.exp,
        createdAt: this.now(),
        data: { client_id: claims.client_id, sub: claims.sub },
      },
      audit,
    );
    return e.seq;
  }

  /**
   * Every token of the client (or subject) issued up to now becomes invalid: `iat <= not_before`,
   * since `iat` has one-second resolution and a token from the same second must not survive.
   */
  async revokeNotBefore(kind: 'client' | 'subject', ref: string, audit?: WithAudit): Promise<number> {
    const now = this.now();
    const e = await this.store.appendFeedEvent(
      {
        stream: 'revocations',
        kind,
        iss: this.issuer,
        ref,
        notBefore: now,
        expiresAt: now + this.coverSeconds,
        createdAt: now,
        data: null,
      },
      audit,
    );
    return e.seq;
  }

  /** A compromised signing key: every token it signed is invalid wherever it is checked. */
  async revokeKey(kid: string, audit?: WithAudit): Promise<number> {
    const now = this.now();
    const e = await this.store.appendFeedEvent(
      {
        stream: 'revocations',
        kind: 'key',
        iss: this.issuer,
        ref: kid,
        notBefore: null,
        expiresAt: now + this.coverSeconds,
        createdAt: now,
        data: null,
      },
      audit,
    );
    return e.seq;
  }

  /** Announces a key change on the keys feed (verifiers pre-load `key.added` keys before they sign). */
  async keyEvent(type: KeyEventType, kid: string, alg: string, jwk?: Record<string, unknown>): Promise<number> {
    const now = this.now();
    const e = await this.store.appendFeedEvent({
      stream: 'keys',
      kind: type,
      iss: this.issuer,
      ref: kid,
      notBefore: null,
      expiresAt: now + this.coverSeconds,
      createdAt: now,
      data: jwk ? { alg, jwk } : { alg },
    });
    return e.seq;
  }

  /** Why a token of ours is revoked, or undefined when it is not. */
  async check(
    claims: Pick<AccessTokenClaims, 'jti' | 'iat' | 'client_id' | 'sub' | 'origin_jti'>,
  ): Promise<'token_revoked' | 'client_revoked' | 'subject_revoked' | undefined> {
    if (await this.store.isTokenRevoked(this.issuer, claims.jti)) return 'token_revoked';
    // A token from a token exchange goes with the token its chain started from (RFC 8693 delegation).
    if (claims.origin_jti && (await this.store.isTokenRevoked(this.issuer, claims.origin_jti))) return 'token_revoked';
    const clientNb = await this.store.revocationNotBefore(this.issuer, 'client', claims.client_id);
    if (clientNb !== undefined && claims.iat <= clientNb) return 'client_revoked';
    const subjectNb = await this.store.revocationNotBefore(this.issuer, 'subject', claims.sub);
    if (subjectNb !== undefined && claims.iat <= subjectNb) return 'subject_revoked';
    return undefined;
  }
}
