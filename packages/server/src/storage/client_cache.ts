import type { Clock } from '@latchkey/protocol';
import type { ClientRecord, ClientStore, WithAudit } from './ports.ts';

/**
 * A read-through cache in front of a ClientStore: client authentication looks a client up on
 * every token request. Writes through this object invalidate at once; writes made by another
 * replica are seen after at most `ttlSeconds` (the feeds issue replaces this bound with push
 * invalidation). Only found clients are cached, and at most `maxEntries` of them.
 */
export class ClientCache implements ClientStore {
  private readonly clock: Clock;
  private readonly entries = new Map<string, { record: ClientRecord; expires: number }>();
  private readonly store: ClientStore;
  private readonly ttlSeconds: number;
  private readonly maxEntries: number;

  constructor(store: ClientStore, ttlSeconds: number, clock: Clock, maxEntries = 10_000) {
    this.clock = clock;
    this.store = store;
    this.ttlSeconds = ttlSeconds;
    this.maxEntries = maxEntries;
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const now = this.clock.now();
    const hit = this.entries.get(clientId);
    if (hit && hit.expires > now) return hit.record;
    const record = await this.store.getClient(clientId);
    if (record && this.ttlSeconds > 0) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
      this.entries.set(clientId, { record, expires: now + this.ttlSeconds * 1000 });
    } else {
      this.entries.delete(clientId);
    }
    return record;
  }

  async createClient(client: ClientRecord, audit?: WithAudit): Promise<void> {
    this.entries.delete(client.clientId);
    await this.store.createClient(client, audit);
  }

  async updateClient(client: ClientRecord, audit?: WithAudit): Promise<boolean> {
    this.entries.delete(client.clientId);
    try {
      return await this.store.updateClient(client, audit);
    } finally {
      this.entries.delete(client.clientId);
    }
  }

  async deleteClient(clientId: string, audit?: WithAudit): Promise<boolean> {
    this.entries.delete(clientId);
    try {
      return await this.store.deleteClient(clientId, audit);
    } finally {
      this.entries.delete(clientId);
    }
  }

  async lockClient(clientId: string, until: number | null, audit?: WithAudit): Promise<boolean> {
    this.entries.delete(clientId);
    try {
      return await this.store.lockClient(clientId, until, audit);
    } finally {
      this.entries.delete(clientId);
    }
  }

  /** Forgets every cached client (on a feed event from any replica: a client was revoked or deleted). */
  clear(): void {
    this.entries.clear();
  }

  listClients(): Promise<ClientRecord[]> {
    return this.store.listClients();
  }
}
