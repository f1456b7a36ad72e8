import type { JSONWebKeySet } from 'jose';
import { OutboundFetch } from '../http/outbound_fetch.ts';
import { ClientJwks } from '../oauth/client_auth/client_jwks.ts';
import type { FederationIssuerRecord } from '../storage/ports.ts';

export interface FederationKeysOptions {
  /** Hosts, addresses and CIDRs allowed although special-purpose (`outboundAllow`). */
  allow: readonly string[];
  /** PEM CAs trusted beside the system roots (`outboundCaFile`). */
  ca: string | undefined;
  /** Least seconds between refetches caused by an unknown `kid` (a rotation). */
  cooldownSeconds: number;
}

interface PerIssuer {
  version: number;
  outbound: OutboundFetch;
  jwks: ClientJwks;
  discovered?: { jwksUri: string; at: number };
}

/** The key set could not be had; `message` says why in words fit for the audit (never a body). */
export class IssuerKeysError extends Error {}

/**
 * A trusted issuer's signing keys: inline, or fetched from its JWKS / SPIFFE bundle endpoint (or
 * the jwks_uri its OpenID discovery document names) through the outbound guard with the issuer's
 * own policy — https unless allowed, no loopback, private or link-local address unless allowed,
 * 5 s and 256 KiB per answer, redirects within the origin only — and cached like the SDK's: kept
 * for five minutes, fetched again at once for an unknown `kid` (at most once per cooldown), a
 * stale set kept while the issuer is down.
 */
export class FederationKeys {
  private readonly per = new Map<string, PerIssuer>();
  private readonly o: FederationKeysOptions;

  constructor(options: FederationKeysOptions) {
    this.o = options;
  }

  async keySet(issuer: FederationIssuerRecord, refresh = false): Promise<JSONWebKeySet> {
    if (issuer.jwks) return issuer.jwks as JSONWebKeySet;
    const p = this.of(issuer);
    let uri = issuer.jwksUri;
    try {
      if (!uri && issuer.discovery) uri = await this.discover(issuer, p);
      if (!uri) throw new IssuerKeysError('the issuer has no keys configured');
      return await p.jwks.keySetAt(issuer.name, uri, { refresh });
    } catch (err) {
      throw err instanceof IssuerKeysError ? err : new IssuerKeysError(`keys unavailable: ${(err as Error).message}`);
    }
  }

  /** OpenID Connect Discovery §4: `jwks_uri` of `<issuer>/.well-known/openid-configuration`, kept an hour. */
  private async discover(issuer: FederationIssuerRecord, p: PerIssuer): Promise<string> {
    if (p.discovered && Date.now() - p.discovered.at < 3_600_000) return p.discovered.jwksUri;
    const res = await p.outbound.fetch(`${issuer.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, {
      headers: { accept: 'application/json' },
    });
    let doc: { issuer?: unknown; jwks_uri?: unknown };
    try {
      doc = JSON.parse(res.body.toString('utf8')) as typeof doc;
    } catch {
      throw new IssuerKeysError('discovery document is not JSON');
    }
    // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
    if (doc.issuer !== issuer.issuer) throw new IssuerKeysError('discovery document names another issuer');
    if (typeof doc.jwks_uri !== 'string') throw new IssuerKeysError('discovery document has no jwks_uri');
    p.outbound.checkUrl(doc.jwks_uri);
    p.discovered = { jwksUri: doc.jwks_uri, at: Date.now() };
    return doc.jwks_uri;
  }

  private of(issuer: FederationIssuerRecord): PerIssuer {
    let p = this.per.get(issuer.name);
    if (!p || p.version !== issuer.updatedAt) {
      const outbound = new OutboundFetch({
        allowHttp: issuer.allowHttp,
        allowSpecialAddresses: issuer.allowPrivateAddresses,
        allow: this.o.allow,
        ca: this.o.ca,
        timeoutMs: 5000,
        maxBytes: 256 * 1024,
      });
      void p?.outbound.close();
      p = {
        version: issuer.updatedAt,
        outbound,
        jwks: new ClientJwks({ outbound, cooldownSeconds: this.o.cooldownSeconds, failureSeconds: 10, maxKeys: 50 }),
      };
      this.per.set(issuer.name, p);
    }
    return p;
  }

  async close(): Promise<void> {
    await Promise.all([...this.per.values()].map((p) => p.outbound.close()));
  }
}
