/**
 * Messages of the IdP's feeds (`/feeds/revocations`, `/feeds/keys`, `/feeds/stream`). The cursor
 * is opaque to consumers: pass back the last one seen (`?since=` or `Last-Event-ID`).
 */

/** What a revocation covers. */
export type RevocationKind = 'token' | 'client' | 'subject' | 'key';

export interface RevocationEntry {
  cursor: string;
  kind: RevocationKind;
  /** Issuer of the tokens it covers. */
  iss: string;
  /** kind `token`: the token's jti. kind `client`: a client_id. kind `subject`: a sub. kind `key`: a kid. */
  ref: string;
  /** kind `client` / `subject`: every token of that client or subject with `iat <= not_before` is invalid. */
  not_before?: number;
  /** When nothing the entry covers can still be valid; consumers drop it then. */
  expires_at: number;
  revoked_at: number;
}

export type KeyEventType = 'key.added' | 'key.activated' | 'key.retired' | 'key.removed' | 'key.revoked';

export interface KeyEvent {
  cursor: string;
  type: KeyEventType;
  kid: string;
  alg: string;
  /** The public JWK, on `key.added`, so verifiers can load a next key before it signs. */
  jwk?: Record<string, unknown>;
  at: number;
}

/** A page of a feed: entries after the cursor asked for, the cursor to ask from next, and whether more wait. */
export interface FeedPage<T> {
  entries: T[];
  cursor: string;
  has_more: boolean;
}

/** A new policy bundle version was published: fetch `GET /feeds/policy` (ETag) to get it. */
export interface PolicyEvent {
  cursor: string;
  type: 'policy.published';
  version: number;
  digest: string;
  at: number;
}

/** SSE event names on `/feeds/stream`. */
export const FEED_STREAM_EVENTS = { revocation: 'revocation', key: 'key', policy: 'policy' } as const;
