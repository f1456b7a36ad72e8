import type { Clock } from '@latchkey/protocol';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from '@latchkey/protocol';

export interface CachedKey {
  kid: string;
  alg: SigningAlgorithm;
  key: KeyObject;
}

/** Which JWK shapes each allowed algorithm may use (RFC 8725 §3.1: the key decides the algorithm). */
function importJwk(jwk: Record<string, unknown>): CachedKey | undefined {
  const kid = jwk.kid;
  const alg = jwk.alg === 'Ed25519' ? 'EdDSA' : jwk.alg;
  if (typeof kid !== 'string' || kid.length === 0 || (jwk.use !== undefined && jwk.use !== 'sig')) return undefined;
  const fits =
    (alg === 'ES256' && jwk.kty === 'EC' && jwk.crv === 'P-256') ||
    (alg === 'EdDSA' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519') ||
    (alg === 'RS256' && jwk.kty === 'RSA');
  if (!fits) return undefined;
  try {
    const pub: Record<string, unknown> = {};
    for (const m of ['kty', 'crv', 'x', 'y', 'n', 'e']) if (jwk[m] !== undefined) pub[m] = jwk[m];
    const key = createPublicKey({ key: pub as import('node:crypto').JsonWebKey, format: 'jwk' });
    if (alg === 'RS256' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return undefined;
    return { kid, alg: alg as SigningAlgorithm, key };
  } catch {
    return undefined;
  }
}

const maxAgeOf = (cacheControl: string | null): number | undefined => {
  const m = /(?:^|,)\s*max-age=(\d+)/i.exec(cacheControl ?? '');
  return m ? Number(m[1]) : undefined;
};

export interface JwksCacheOptions {
  jwksUri: string;
  fetch: typeof fetch;
  /** Least time between two refetches caused by unknown kids (ms). */
  cooldownMs: number;
  /** Refresh interval when the response names no max-age (ms). */
  defaultMaxAgeMs: number;
  clock: Clock;
}

/**
 * The issuer's public keys, fetched only from its JWKS (never from `jku`, `x5u`, `jwk` or `x5c`
 * headers). Honours `Cache-Control: max-age` with a background refresh, refetches on an unknown
 * kid at most once per cooldown with concurrent callers sharing one request, and keeps the last
 * good set when the issuer is unreachable (fail-static; the verifier bounds how long).
 */
export class JwksCache {
  private keys = new Map<string, CachedKey>();
  private etag: string | undefined;
  private inflight: Promise<void> | undefined;
  private lastAttempt = 0;
  private expiresAt = 0;
  /** When the issuer last answered (ms since epoch); 0 = never. */
  lastSuccess = 0;
  lastError: string | undefined;
  private readonly options: JwksCacheOptions;

  constructor(options: JwksCacheOptions) {
    this.options = options;
  }

  get size(): number {
    return this.keys.size;
  }

  get(kid: string): CachedKey | undefined {
    if (this.options.clock.now() > this.expiresAt) void this.refresh().catch(() => {});
    return this.keys.get(kid);
  }

  /** The key for `kid`, refetching the JWKS once if it is unknown and the cooldown allows. */
  async resolve(kid: string): Promise<CachedKey | undefined> {
    const known = this.get(kid);
    if (known) return known;
    if (this.inflight) await this.inflight.catch(() => {});
    else if (this.options.clock.now() - this.lastAttempt >= this.options.cooldownMs)
      await this.refresh().catch(() => {});
    return this.keys.get(kid);
  }

  /** Fetches the JWKS; concurrent callers share one request. */
  refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async load(): Promise<void> {
    this.lastAttempt = this.options.clock.now();
    try {
      const res = await this.options.fetch(this.options.jwksUri, {
        headers: this.etag ? { 'if-none-match': this.etag } : {},
      });
      const maxAge = maxAgeOf(res.headers.get('cache-control'));
      this.expiresAt = this.options.clock.now() + (maxAge !== undefined ? maxAge * 1000 : this.options.defaultMaxAgeMs);
      if (res.status === 304) {
        this.lastSuccess = this.options.clock.now();
        return;
      }
      if (!res.ok) throw new Error(`JWKS answered HTTP ${res.status}`);
      const body = (await res.json()) as { keys?: unknown };
      if (!Array.isArray(body.keys)) throw new Error('JWKS has no keys array');
      const keys = new Map<string, CachedKey>();
      for (const jwk of body.keys) {
        const k = jwk !== null && typeof jwk === 'object' ? importJwk(jwk as Record<string, unknown>) : undefined;
        if (k) keys.set(k.kid, k);
      }
      // Keep keys announced on the key feed that the JWKS response may predate.
      for (const [kid, k] of this.keys) if (this.preloaded.has(kid) && !keys.has(kid)) keys.set(kid, k);
      this.keys = keys;
      this.etag = res.headers.get('etag') ?? undefined;
      this.lastSuccess = this.options.clock.now();
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.expiresAt = this.options.clock.now() + Math.min(this.options.cooldownMs, 30_000);
      throw err;
    }
  }

  private readonly preloaded = new Set<string>();

  /** A key announced on the key feed before it signs (`key.added`). */
  add(jwk: Record<string, unknown>): void {
    const k = importJwk(jwk);
    if (k) {
      this.keys.set(k.kid, k);
      this.preloaded.add(k.kid);
    }
  }

  /** A key revoked or removed at the issuer. */
  remove(kid: string): void {
    this.keys.delete(kid);
    this.preloaded.delete(kid);
  }
}
