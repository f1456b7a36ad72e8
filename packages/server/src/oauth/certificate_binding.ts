import { OAuthError } from '../errors.ts';
import type { ClientRecord } from '../storage/ports.ts';
import type { PresentedCertificate } from '../tls/client_certificate.ts';

/** A token is not bound to a certificate that has less than this many seconds left. */
export const MIN_BOUND_LIFETIME = 5;

/**
 * RFC 8705 §3: whether and how a new access token is bound to the client's certificate. A client
 * that presents a certificate on the connection to the token endpoint asks for binding (and one
 * that authenticates with it always has one); a client registered with
 * `tls_client_certificate_bound_access_tokens` must present one. A bound token carries
 * `cnf.x5t#S256` and never outlives the certificate: its lifetime is cut to what the certificate
 * has left, so a stolen key stops working when its certificate does.
 */
export function bindToCertificate(
  client: ClientRecord,
  certificate: PresentedCertificate | undefined,
  ttl: number,
  now: number,
): { ttl: number; cnf?: { 'x5t#S256': string } } {
  if (!certificate) {
    if (client.metadata.tls_client_certificate_bound_access_tokens) {
      throw new OAuthError(
        'invalid_request',
        "this client's tokens are bound to its certificate (RFC 8705 §3): connect with its client certificate",
      );
    }
    return { ttl };
  }
  const notBefore = Date.parse(certificate.cert.validFrom);
  const left = Math.floor((Date.parse(certificate.cert.validTo) - now) / 1000);
  if (notBefore > now || left < MIN_BOUND_LIFETIME)
    throw new OAuthError('invalid_request', 'the client certificate is not valid long enough to bind a token to it');
  return { ttl: Math.min(ttl, left), cnf: { 'x5t#S256': certificate.thumbprint } };
}
