import type { AccessTokenClaims, RevocationEntry } from '@latchkey/protocol';
import { TokenTable } from './token_table.ts';

/**
 * The revocations a service knows, keyed as the IdP keys them: token jti, client and subject
 * not-before, key id. Each entry leaves when it expires. A million token entries are about 40 MB.
 */
export class RevocationSet {
  /** Token ids in typed arrays (a million is ~40 MB the garbage collector never walks). */
  private readonly tokens = new TokenTable();
  private readonly clients = new Map<string, { nb: number; exp: number }>();
  private readonly subjects = new Map<string, { nb: number; exp: number }>();
  private readonly keys = new Map<string, number>();
  private readonly listeners = new Set<(e: RevocationEntry) => void>();
  cursor = '0';
  private readonly issuer: string;

  constructor(issuer: string) {
    this.issuer = issuer;
  }

  get size(): number {
    return this.tokens.size + this.clients.size + this.subjects.size + this.keys.size;
  }

  /** Called with each entry applied (for workload identities that cut connections of revoked peers). */
  onApply(listener: (e: RevocationEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(e: RevocationEntry): void {
    if (e.iss !== this.issuer) return;
    this.record(e);
    for (const l of this.listeners) l(e);
  }

  /** Whether a client revocation covers something of that client issued at `issuedAt` (epoch seconds). */
  clientRevoked(clientId: string, issuedAt: number): boolean {
    const c = this.clients.get(clientId);
    return c !== undefined && issuedAt <= c.nb;
  }

  private record(e: RevocationEntry): void {
    if (e.kind === 'token') this.tokens.set(e.ref, e.expires_at);
    else if (e.kind === 'key') this.keys.set(e.ref, e.expires_at);
    else {
      const map = e.kind === 'client' ? this.clients : this.subjects;
      const prev = map.get(e.ref);
      const nb = e.not_before ?? e.revoked_at;
      if (!prev || prev.nb < nb) map.set(e.ref, { nb, exp: e.expires_at });
    }
  }

  keyRevoked(kid: string): boolean {
    return this.keys.has(kid);
  }

  /** Why a token is revoked, or undefined. */
  check(
    kid: string,
    claims: Pick<AccessTokenClaims, 'jti' | 'iat' | 'sub' | 'origin_jti'> & { client_id?: string },
  ): string | undefined {
    if (this.keys.has(kid)) return 'its signing key was revoked';
    if (this.tokens.has(claims.jti)) return 'the token was revoked';
    // A token from a token exchange goes with the token its chain started from.
    if (claims.origin_jti !== undefined && this.tokens.has(claims.origin_jti))
      return 'the token its delegation started from was revoked';
    const c = claims.client_id === undefined ? undefined : this.clients.get(claims.client_id);
    if (c && claims.iat <= c.nb) return 'its client was revoked';
    const s = this.subjects.get(claims.sub);
    if (s && claims.iat <= s.nb) return 'its subject was revoked';
    return undefined;
  }

  /** Drops entries that can no longer cover a valid token. */
  prune(now: number): void {
    this.tokens.prune(now);
    for (const [k, exp] of this.keys) if (exp <= now) this.keys.delete(k);
    for (const [k, v] of this.clients) if (v.exp <= now) this.clients.delete(k);
    for (const [k, v] of this.subjects) if (v.exp <= now) this.subjects.delete(k);
  }
}
