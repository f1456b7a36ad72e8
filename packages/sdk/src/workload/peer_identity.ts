import type { IncomingMessage } from 'node:http';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { spiffeIdOfSan } from '@latchkey/protocol';

/**
 * Which peers may connect (server side) or be connected to (client side): a list of SPIFFE IDs,
 * or a function of the peer's SPIFFE ID.
 *
 * @example
 * ```ts
 * const allow: PeerPolicy = ['spiffe://idp.internal/svc/checkout', 'spiffe://idp.internal/svc/billing'];
 * ```
 */
export type PeerPolicy = readonly string[] | ((spiffeId: string) => boolean);

/**
 * Whether `spiffeId` passes the policy; no policy allows any peer the trust bundle vouches for.
 *
 * @example
 * ```ts
 * peerAllowed(['spiffe://idp.internal/svc/orders'], 'spiffe://idp.internal/svc/orders'); // true
 * ```
 */
export function peerAllowed(policy: PeerPolicy | undefined, spiffeId: string | undefined): boolean {
  if (spiffeId === undefined) return false;
  if (policy === undefined) return true;
  return typeof policy === 'function' ? policy(spiffeId) : policy.includes(spiffeId);
}

/**
 * The SPIFFE ID of a TLS peer certificate as node:tls reports it (X509-SVID §2: exactly one URI
 * SAN), or undefined.
 *
 * @example
 * ```ts
 * const id = spiffeIdOfPeer(socket.getPeerCertificate());
 * ```
 */
export function spiffeIdOfPeer(cert: PeerCertificate | undefined): string | undefined {
  // node:tls has parsed the certificate already: no second parse per handshake.
  return spiffeIdOfSan(cert?.subjectaltname);
}

/**
 * The verified SPIFFE ID of the peer of a request or TLS socket: defined only when the TLS
 * handshake verified the peer's certificate against the trust bundle (`socket.authorized`).
 * Handlers use it to know which workload is calling.
 *
 * @example
 * ```ts
 * http.createServer((req, res) => res.end(`hello ${peerSpiffeId(req)}`));
 * ```
 */
export function peerSpiffeId(source: IncomingMessage | TLSSocket | { raw: IncomingMessage }): string | undefined {
  const s = source as Partial<TLSSocket> & { raw?: IncomingMessage; socket?: unknown };
  const socket = (typeof s.getPeerCertificate === 'function' ? s : (s.raw?.socket ?? s.socket)) as
    | Partial<TLSSocket>
    | undefined;
  if (socket?.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined;
  return spiffeIdOfPeer(socket.getPeerCertificate());
}
