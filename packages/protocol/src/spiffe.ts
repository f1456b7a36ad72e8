import { createHash, type X509Certificate } from 'node:crypto';

/**
 * A SPIFFE ID (SPIFFE-ID §2): `spiffe://<trust domain>/<path>`, trust domain of lowercase letters,
 * digits, `.`, `-`, `_`; path segments of letters, digits, `.`, `-`, `_` (none empty, `.` or `..`).
 */
export const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]{1,255}(\/[A-Za-z0-9._-]+)+$/;

export const isSpiffeId = (s: string): boolean =>
  SPIFFE_ID.test(s) && s.length <= 2048 && !/\/\.\.?(\/|$)/.test(s.slice(9));

/** `spiffe://<trust-domain>/svc/<client_id>`: the identity Latchkey gives a registered client. */
export const serviceSpiffeId = (trustDomain: string, clientId: string): string =>
  `spiffe://${trustDomain}/svc/${encodeURIComponent(clientId)}`;

/** The client id a service SPIFFE ID names (the inverse of {@link serviceSpiffeId}), in `trustDomain` when given. */
export function serviceClientId(spiffeId: string, trustDomain?: string): string | undefined {
  const m = /^spiffe:\/\/([^/]+)\/svc\/([^/]+)$/.exec(spiffeId);
  if (!m || (trustDomain !== undefined && m[1] !== trustDomain)) return undefined;
  try {
    return decodeURIComponent(m[2]!);
  } catch {
    return undefined;
  }
}

/**
 * The SPIFFE ID of an X.509-SVID (X509-SVID §2: exactly one URI SAN, a SPIFFE ID), or undefined
 * when the certificate carries none, several URIs, or a malformed one. node:crypto renders the
 * SAN as `URI:...` entries separated by `, ` and quotes any value that contains a separator —
 * which no valid SPIFFE ID does, so a quoted value is simply not one.
 */
export function spiffeIdOfCertificate(cert: X509Certificate): string | undefined {
  return spiffeIdOfSan(cert.subjectAltName);
}

/** The same from a SAN as node:crypto and node:tls render it (`X509Certificate.subjectAltName`, `PeerCertificate.subjectaltname`). */
export function spiffeIdOfSan(san: string | undefined): string | undefined {
  if (!san) return undefined;
  const uris = san
    .split(', ')
    .filter((e) => e.startsWith('URI:'))
    .map((e) => e.slice(4));
  if (uris.length !== 1 || !isSpiffeId(uris[0]!)) return undefined;
  return uris[0];
}

/** RFC 8705 §3.1: the `x5t#S256` confirmation of a certificate, base64url SHA-256 of its DER. */
export const certificateThumbprint = (der: Buffer | Uint8Array): string =>
  createHash('sha256').update(der).digest('base64url');

/**
 * The scope a Bearer caller's token must carry, with the IdP itself as its audience, to obtain a
 * workload certificate. Privileged: granted only when requested by name.
 */
export const WORKLOAD_SCOPE = 'workload';
