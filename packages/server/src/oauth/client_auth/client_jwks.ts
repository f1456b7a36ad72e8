import { createRemoteJWKSet, type JSONWebKeySet, type RemoteJWKSet } from 'jose';
import type { ClientRecord } from '../../storage/ports.ts';

/**
 * The keys a client registered — inline `jwks`, or `jwks_uri` fetched and cached (jose's remote
 * set: 5 s timeout, 30 s cooldown between refetches for an unknown key). One cache per process,
 * shared by private_key_jwt (signature keys) and self_signed_tls_client_auth (x5c certificates).
 */
export class ClientJwks {
  private readonly remote = new Map<string, RemoteJWKSet>();

  /** The remote set of a jwks_uri client (undefined for inline jwks). */
  remoteSet(client: ClientRecord): RemoteJWKSet | undefined {
    const uri = client.metadata.jwks_uri;
    if (client.metadata.jwks || !uri) return undefined;
    const cacheKey = `${client.clientId} ${uri}`;
    let set = this.remote.get(cacheKey);
    if (!set) {
      set = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000 });
      this.remote.set(cacheKey, set);
    }
    return set;
  }

  /** The whole key set: inline, or the cached remote one (fetched when missing or stale). */
  async keySet(client: ClientRecord, options: { refresh?: boolean } = {}): Promise<JSONWebKeySet> {
    if (client.metadata.jwks) return client.metadata.jwks as JSONWebKeySet;
    const set = this.remoteSet(client);
    if (!set) return { keys: [] };
    if (!set.fresh || (options.refresh && !set.coolingDown)) await set.reload();
    return set.jwks() ?? { keys: [] };
  }
}
