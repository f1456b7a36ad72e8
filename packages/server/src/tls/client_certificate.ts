import { X509Certificate } from 'node:crypto';
import { certificateThumbprint } from '@latchkey/protocol';
import type { TLSSocket } from 'node:tls';
import proxyAddr from '@fastify/proxy-addr';
import type { FastifyRequest } from 'fastify';

/** A client certificate presented on the request's connection (or forwarded by a trusted proxy). */
export interface PresentedCertificate {
  cert: X509Certificate;
  /** Further certificates the client sent (intermediates), leaf excluded. */
  chain: X509Certificate[];
  /** RFC 8705 §3.1: base64url SHA-256 of the DER certificate, the `cnf` member `x5t#S256`. */
  thumbprint: string;
  via: 'tls' | 'proxy';
}

export interface ClientCertificateOptions {
  /** Addresses (IPs or CIDRs) of TLS-terminating proxies whose certificate header is believed. */
  trustedProxies: readonly string[];
  /** Header such a proxy puts the client certificate in (RFC 9440 `Client-Cert` by default). */
  header: string;
}

export type ClientCertificateReader = (request: FastifyRequest) => PresentedCertificate | undefined;

/**
 * A header value as a certificate: RFC 9440 §2.1's byte sequence (`:<base64 DER>:`), or the
 * URL-encoded PEM nginx (`$ssl_client_escaped_cert`) and some load balancers send.
 */
function parseHeaderCertificate(value: string): X509Certificate | undefined {
  try {
    const v = value.trim();
    const sf = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(v);
    if (sf) return new X509Certificate(Buffer.from(sf[1]!, 'base64'));
    const pem = v.includes('%') ? decodeURIComponent(v) : v;
    if (pem.startsWith('-----BEGIN CERTIFICATE-----')) return new X509Certificate(pem);
  } catch {
    /* not a certificate */
  }
  return undefined;
}

/**
 * Reads the client certificate of a request (once per connection, or per request from a proxy). Over this server's own TLS it is
 * the certificate of the connection (the listener asks for one and accepts any; what it is worth
 * is decided by the authentication method). Behind a TLS-terminating proxy it is the proxy's
 * header — believed only when the connection comes from an address the operator named: a header
 * sent by anyone else is ignored, so a client can never claim a certificate it does not hold.
 */
export function clientCertificateReader(options: ClientCertificateOptions): ClientCertificateReader {
  const trusted = options.trustedProxies.length > 0 ? proxyAddr.compile([...options.trustedProxies]) : undefined;
  const header = options.header.toLowerCase();
  const chainHeader = `${header}-chain`;
  const seen = new WeakMap<object, PresentedCertificate | null>();

  const fromProxy = (request: FastifyRequest): PresentedCertificate | null => {
    const raw = request.headers[header];
    if (typeof raw !== 'string' || raw.length > 16 * 1024) return null;
    const cert = parseHeaderCertificate(raw);
    if (!cert) return null;
    const chainRaw = request.headers[chainHeader];
    const chain =
      typeof chainRaw === 'string' && chainRaw.length <= 64 * 1024
        ? chainRaw
            .split(',')
            .slice(0, 5)
            .map(parseHeaderCertificate)
            .filter((c): c is X509Certificate => c !== undefined)
        : [];
    return { cert, chain, thumbprint: certificateThumbprint(cert.raw), via: 'proxy' };
  };

  const fromTls = (request: FastifyRequest): PresentedCertificate | null => {
    const socket = request.raw.socket as Partial<TLSSocket>;
    if (typeof socket.getPeerCertificate !== 'function') return null;
    const peer = socket.getPeerCertificate(true);
    if (!peer?.raw) return null;
    try {
      const cert = new X509Certificate(peer.raw);
      const chain: X509Certificate[] = [];
      for (
        let p = peer.issuerCertificate;
        p?.raw && p !== p.issuerCertificate && chain.length < 5;
        p = p.issuerCertificate
      )
        chain.push(new X509Certificate(p.raw));
      return { cert, chain, thumbprint: certificateThumbprint(peer.raw), via: 'tls' };
    } catch {
      return null;
    }
  };

  return (request) => {
    const socket = request.raw.socket;
    const viaProxy = trusted?.(socket.remoteAddress ?? '', 0);
    // A proxy's header belongs to one request; a connection's own certificate to all its requests.
    const key: object = viaProxy ? request.raw : socket;
    const cached = seen.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const found = viaProxy ? fromProxy(request) : fromTls(request);
    seen.set(key, found);
    return found ?? undefined;
  };
}
