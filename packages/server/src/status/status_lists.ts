import { createHash } from 'node:crypto';
import {
  type AccessTokenClaims,
  type Clock,
  compressStatusListAsync,
  epochSeconds,
  STATUS_LIST_TYP,
  type StatusListReference,
  type StatusListTokenClaims,
  setInvalid,
} from '@latchkey/protocol';
import type { KeyRing } from '../keys/key_ring.ts';
import type { FeedStore, StatusListStore, TokenStatusRecord } from '../storage/ports.ts';
import { StatusIndices } from './status_indices.ts';
import { statusJti, statusOfJti } from './status_jti.ts';

export interface StatusListsOptions {
  clock: Clock;
  issuer: string;
  /** Indices per list (a new list is started when one is used up). */
  listSize: number;
  /** The `ttl` claim: seconds a verifier may keep a list before fetching it again. */
  ttl: number;
  /** Seconds from `iat` to `exp` of a Status List Token (at least `ttl`). */
  lifetime: number;
  /** Longest lifetime of a token that carries a reference, with clock skew: how long a list's entries are kept. */
  tokenCover: number;
  keys: Pick<KeyRing, 'signDocument'>;
  store: Pick<
    StatusListStore,
    | 'allocateStatusIndices'
    | 'getStatusList'
    | 'liveStatusLists'
    | 'revokedStatusIndices'
    | 'revokedTokenJtis'
    | 'tokenStatusesAt'
  > &
    Pick<FeedStore, 'latestFeedSeq'>;
}

/** A signed list as served: the JWS, its strong ETag, and until when it is served as it is. */
export interface PublishedStatusList {
  jws: string;
  etag: string;
  iat: number;
  ttl: number;
}

/** Where the lists live under the issuer: short, since the URI is in every token (`/sl/<list>`). */
export const STATUS_LIST_PATH = '/sl';

/**
 * The IdP's Token Status Lists (draft-ietf-oauth-status-list): gives each token a `status_list`
 * reference, and publishes each list as a signed Status List Token (§5.1) computed from the
 * revocation log — a token's bit is 1 (INVALID, §7.1) when any unexpired revocation entry covers
 * it: its jti, the jti its exchange chain started from, its client or subject revoked at or after
 * its `iat`, or its signing key. Built lists are kept until the feed moves (any replica's
 * revocation) or their `ttl` passes, whichever is first.
 */
export class StatusLists {
  private readonly options: StatusListsOptions;
  private readonly indices: StatusIndices;
  private readonly built = new Map<number, PublishedStatusList & { feedSeq: number }>();
  private readonly building = new Map<string, Promise<PublishedStatusList | undefined>>();
  private readonly prefix: string;

  constructor(options: StatusListsOptions) {
    this.options = options;
    this.indices = new StatusIndices(options.store, options.listSize, options.tokenCover, options.clock);
    this.prefix = `${options.issuer}${STATUS_LIST_PATH}/`;
  }

  /** The URI of a list (the `sub` of its token, the `uri` of the tokens it covers). */
  uri(listId: number): string {
    return `${this.prefix}${listId}`;
  }

  /** The Status List Aggregation URI (§9). */
  get aggregationUri(): string {
    return `${this.options.issuer}${STATUS_LIST_PATH}`;
  }

  /** A fresh, never-used reference for a token about to be minted, and the `jti` that names it (status_jti.ts). */
  async reference(): Promise<{ claim: StatusListReference; jti: string }> {
    const { listId, idx } = await this.indices.next();
    return { claim: { idx, uri: this.uri(listId) }, jti: statusJti(listId, idx) };
  }

  /** What storage keeps of a token carrying one of our references (undefined when it carries none). */
  entryOf(
    claims: Pick<AccessTokenClaims, 'jti' | 'sub' | 'iat' | 'exp' | 'origin_jti' | 'status'>,
    clientId: string,
    kid: string,
  ): TokenStatusRecord | undefined {
    const ref = claims.status?.status_list;
    if (!ref?.uri.startsWith(this.prefix)) return undefined;
    return {
      listId: Number(ref.uri.slice(this.prefix.length)),
      idx: ref.idx,
      jti: claims.jti,
      originJti: claims.origin_jti ?? null,
      clientId,
      sub: claims.sub,
      kid,
      iat: claims.iat,
    };
  }

  /** URIs of the lists that may still cover an unexpired token (the aggregation, §9.3). */
  async live(): Promise<string[]> {
    return (await this.options.store.liveStatusLists()).map((id) => this.uri(id));
  }

  /** The signed list, or undefined when there is no such list (never made, or every token in it expired). */
  async token(listId: number): Promise<PublishedStatusList | undefined> {
    const feedSeq = await this.options.store.latestFeedSeq();
    const now = epochSeconds(this.options.clock);
    const hit = this.built.get(listId);
    if (hit && hit.feedSeq === feedSeq && now < hit.iat + hit.ttl) return hit;
    // Requests for the same list at the same feed position share one build.
    const key = `${listId}:${feedSeq}`;
    let p = this.building.get(key);
    if (!p) {
      p = this.build(listId, feedSeq).finally(() => this.building.delete(key));
      this.building.set(key, p);
    }
    return p;
  }

  private async build(listId: number, feedSeq: number): Promise<PublishedStatusList | undefined> {
    const { store, issuer, keys, ttl } = this.options;
    const list = await store.getStatusList(listId);
    if (!list) {
      this.built.delete(listId);
      return undefined;
    }
    const bytes = new Uint8Array(Math.ceil(list.size / 8));
    for (const idx of await store.revokedStatusIndices(issuer, listId)) setInvalid(bytes, idx);
    // Tokens revoked one by one: their jti names the index; the entry there confirms it is theirs.
    const named = new Map<number, string>();
    for (const jti of await store.revokedTokenJtis(issuer)) {
      const at = statusOfJti(jti);
      if (at?.listId === listId) named.set(at.idx, jti);
    }
    for (const e of await store.tokenStatusesAt(listId, [...named.keys()]))
      if (named.get(e.idx) === e.jti) setInvalid(bytes, e.idx);
    const iat = epochSeconds(this.options.clock);
    const claims: StatusListTokenClaims = {
      iss: issuer,
      sub: this.uri(listId),
      iat,
      exp: iat + Math.max(this.options.lifetime, ttl),
      ttl,
      status_list: { bits: 1, lst: await compressStatusListAsync(bytes), aggregation_uri: this.aggregationUri },
    };
    const { jws } = keys.signDocument(claims, STATUS_LIST_TYP);
    const etag = `"${createHash('sha256').update(jws).digest('base64url').slice(0, 22)}"`;
    const published = { jws, etag, iat, ttl, feedSeq };
    // Keep at most the lists asked for lately (a handful are live at a time).
    if (this.built.size >= 64) this.built.delete(this.built.keys().next().value as number);
    this.built.set(listId, published);
    return published;
  }
}
