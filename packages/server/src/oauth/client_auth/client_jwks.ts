import type { JSONWebKeySet } from 'jose';
import { invalidClient } from '../../errors.ts';
import type { OutboundFetch } from '../../http/outbound_fetch.ts';
import type { ClientRecord } from '../../storage/ports.ts';

export interface ClientJwksOptions {
  /** The guard every jwks_uri request goes through (address policy, https, size and time caps). */
  outbound: Pick<OutboundFetch, 'fetch'>;
  /** Seconds a fetched set is used before it is fetched again (default 300). */
  maxAgeSeconds?: number;
  /** Seconds between refetches asked for by an unknown key (default 30). */
  cooldownSeconds?: number;
  /** Seconds a failed fetch is remembered, so each token request does not fetch again (default 60). */
  failureSeconds?: number;
  /** Remote sets kept at most, least recently used dropped first (default 1,000). */
  maxEntries?: number;
  /** Keys a set may hold (default 20). */
  maxKeys?: number;
  now?: () => number;
}

interface Entry {
  uri: string;
  keys?: JSONWebKeySet;
  fetchedAt: number;
  /** Until when a failure is answered from memory (ms). */
  failedUntil: number;
  /** Why the last fetch failed. */
  lastError?: Error;
  inflight?: Promise<JSONWebKeySet>;
}

/**
 * The keys a client registered — inline `jwks`, or `jwks_uri` fetched through the outbound guard
 * and cached per client, in a bounded LRU map (a client changing its URI replaces its entry; a
 * client cannot grow the cache). Failures are cached too, and surface as `invalid_client` with one
 * description whatever went wrong (reason `jwks_unavailable` in the audit), so the IdP is no
 * oracle for the network behind it. Shared by private_key_jwt and self_signed_tls_client_auth.
 */
export class ClientJwks {
  private readonly entries = new Map<string, Entry>();
  private readonly o: Required<Omit<ClientJwksOptions, 'outbound' | 'now'>> & Pick<ClientJwksOptions, 'outbound'>;
  private readonly now: () => number;

  constructor(options: ClientJwksOptions) {
    this.o = { maxAgeSeconds: 300, cooldownSeconds: 30, failureSeconds: 60, maxEntries: 1000, maxKeys: 20, ...options };
    this.now = options.now ?? Date.now;
  }

  /** The whole key set: inline, or the cached remote one (fetched when missing, stale, or — once per cooldown — on `refresh`). */
  async keySet(client: ClientRecord, options: { refresh?: boolean } = {}): Promise<JSONWebKeySet> {
    if (client.metadata.jwks) return client.metadata.jwks as JSONWebKeySet;
    const uri = client.metadata.jwks_uri;
    if (!uri) return { keys: [] };
    try {
      return await this.keySetAt(client.clientId, uri, options);
    } catch {
      throw unavailable();
    }
  }

  /**
   * The key set at `uri`, cached under `key` (one entry per owner: a new URI replaces the old);
   * throws the fetch's error when there is none to answer with.
   */
  async keySetAt(key: string, uri: string, options: { refresh?: boolean } = {}): Promise<JSONWebKeySet> {
    const now = this.now();
    let e = this.entries.get(key);
    if (!e || e.uri !== uri) {
      e = { uri, fetchedAt: 0, failedUntil: 0 };
      this.remember(key, e);
    } else {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    const stale = !e.keys || now - e.fetchedAt >= this.o.maxAgeSeconds * 1000;
    const mayRefresh = options.refresh === true && now - e.fetchedAt >= this.o.cooldownSeconds * 1000;
    if (e.keys && !stale && !mayRefresh) return e.keys;
    if (now < e.failedUntil) {
      if (e.keys) return e.keys;
      throw e.lastError ?? new Error('unavailable');
    }
    e.inflight ??= this.load(e).finally(() => {
      e.inflight = undefined;
    });
    try {
      return await e.inflight;
    } catch (err) {
      if (e.keys) return e.keys; // a stale set is better than none while the server is down
      throw err;
    }
  }

  private async load(e: Entry): Promise<JSONWebKeySet> {
    try {
      const res = await this.o.outbound.fetch(e.uri, {
        headers: { accept: 'application/jwk-set+json, application/json' },
      });
      const set = JSON.parse(res.body.toString('utf8')) as unknown;
      if (set === null || typeof set !== 'object' || !Array.isArray((set as JSONWebKeySet).keys))
        throw new Error('not a JWK set');
      const keys = (set as JSONWebKeySet).keys.filter((k) => k !== null && typeof k === 'object');
      if (keys.length > this.o.maxKeys) throw new Error('too many keys');
      e.keys = { keys };
      e.fetchedAt = this.now();
      e.failedUntil = 0;
      return e.keys;
    } catch (err) {
      e.failedUntil = this.now() + this.o.failureSeconds * 1000;
      e.lastError = err as Error;
      throw err;
    }
  }

  private remember(clientId: string, e: Entry): void {
    this.entries.delete(clientId);
    if (this.entries.size >= this.o.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(clientId, e);
  }

  /** Entries held (bounded by `maxEntries`). */
  get size(): number {
    return this.entries.size;
  }
}

const unavailable = () => invalidClient("the client's registered keys could not be obtained", 'jwks_unavailable');
