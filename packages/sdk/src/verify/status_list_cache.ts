import {
  type Clock,
  checkStatusListTokenClaims,
  decompressStatusList,
  epochSeconds,
  STATUS_LIST_MEDIA_TYPE,
  type StatusListReference,
  statusAt,
} from '@latchkey/protocol';

/** Verifies a JWS signed by one of the IdP's keys with the given `typ`; throws when it is not. */
export type SignedByIdp = (
  token: unknown,
  typOk: (header: Record<string, unknown>) => boolean,
  what: string,
) => Promise<{ payload: Record<string, unknown> }>;

export interface StatusListCacheOptions {
  clock: Clock;
  issuer: string;
  /** Only lists whose URI starts with this are fetched (the IdP's `status_list_aggregation_endpoint` + `/`). */
  prefix: string;
  fetch: typeof fetch;
  signedByIdp: SignedByIdp;
  skew: number;
  /** Bounds on the list's `ttl` (draft §11.5: a verifier keeps them within reason). Seconds. */
  minTtl?: number;
  maxTtl?: number;
  /** Seconds to wait before asking again after a failed fetch. */
  retryAfter?: number;
  /** Largest list accepted, inflated, in bytes (default 2 MiB: 16M one-bit entries). */
  maxBytes?: number;
}

interface Entry {
  bytes: Uint8Array;
  bits: 1 | 2 | 4 | 8;
  /** When to fetch again (ms), from the list's `ttl`. */
  refreshAt: number;
  /** After this (epoch seconds), the list says nothing (its `exp`). */
  exp: number | undefined;
}

const isStatusListTyp = (h: Record<string, unknown>) => h.typ === 'statuslist+jwt';

/**
 * A verifier's copy of the IdP's Token Status Lists (draft-ietf-oauth-status-list §8.3): each
 * list fetched when a token first names it, its signature checked against the IdP's JWKS, its
 * `sub` against the URI, kept for its `ttl` and refreshed in the background while still within
 * its `exp`. `status()` answers the token's status value, or undefined when no statement can be
 * made (a list that cannot be had, or an index out of its bounds) — the caller decides.
 */
export class StatusListCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry | undefined>>();
  private readonly failedAt = new Map<string, number>();
  private readonly o: Required<StatusListCacheOptions>;
  /** Why the last fetch failed, for health output. */
  lastError: string | undefined;

  constructor(options: StatusListCacheOptions) {
    this.o = { minTtl: 5, maxTtl: 3600, retryAfter: 5, maxBytes: 2 * 1024 * 1024, ...options };
  }

  /** Lists held. */
  get size(): number {
    return this.entries.size;
  }

  async status(ref: StatusListReference): Promise<number | undefined> {
    if (!ref.uri.startsWith(this.o.prefix)) return undefined;
    const now = this.o.clock.now();
    let e = this.entries.get(ref.uri);
    if (e && e.exp !== undefined && e.exp + this.o.skew <= now / 1000) {
      this.entries.delete(ref.uri);
      e = undefined;
    }
    if (!e) e = await this.load(ref.uri);
    else if (now >= e.refreshAt) void this.load(ref.uri);
    return e ? statusAt(e.bytes, ref.idx, e.bits) : undefined;
  }

  /** Fetches a list (one request per URI at a time; none within `retryAfter` of a failure). */
  private load(uri: string): Promise<Entry | undefined> {
    const failed = this.failedAt.get(uri);
    if (failed !== undefined && this.o.clock.now() - failed < this.o.retryAfter * 1000)
      return Promise.resolve(this.entries.get(uri));
    let p = this.inflight.get(uri);
    if (!p) {
      p = this.fetchList(uri)
        .then(
          (e) => {
            this.entries.set(uri, e);
            this.failedAt.delete(uri);
            return e;
          },
          (err: Error) => {
            this.lastError = err.message;
            this.failedAt.set(uri, this.o.clock.now());
            return this.entries.get(uri);
          },
        )
        .finally(() => this.inflight.delete(uri));
      this.inflight.set(uri, p);
    }
    return p;
  }

  private async fetchList(uri: string): Promise<Entry> {
    const res = await this.o.fetch(uri, { headers: { accept: STATUS_LIST_MEDIA_TYPE }, redirect: 'error' });
    if (!res.ok) throw new Error(`status list ${uri} answered HTTP ${res.status}`);
    const text = await res.text();
    const { payload } = await this.o.signedByIdp(text.trim(), isStatusListTyp, 'a status list token');
    const now = epochSeconds(this.o.clock);
    const r = checkStatusListTokenClaims(payload, { uri, issuer: this.o.issuer, now, skew: this.o.skew });
    if (!r.ok) throw new Error(`status list ${uri} refused: ${r.problem}`);
    const { status_list: sl, ttl, exp } = r.claims;
    const bytes = decompressStatusList(sl.lst, this.o.maxBytes);
    const keep = Math.min(this.o.maxTtl, Math.max(this.o.minTtl, ttl ?? this.o.maxTtl));
    return { bytes, bits: sl.bits, refreshAt: this.o.clock.now() + keep * 1000, exp };
  }
}
