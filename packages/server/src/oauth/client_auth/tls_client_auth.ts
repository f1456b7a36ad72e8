import type { Clock } from '@latchkey/protocol';
import type { X509Certificate } from 'node:crypto';
import { serviceClientId, serviceSpiffeId, spiffeIdOfCertificate } from '@latchkey/protocol';
import { invalidClient } from '../../errors.ts';
import { param } from '../../http/form.ts';
import { verifyClientChain } from '../../ca/chain_verify.ts';
import type { ClientCertificateReader, PresentedCertificate } from '../../tls/client_certificate.ts';
import type { ClientJwks } from './client_jwks.ts';
import type { ClientAuthMethod } from './types.ts';

export interface TlsClientAuthDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  certificate: ClientCertificateReader;
  /** The workload CA's trust anchors now (roots, and an operator's intermediate). */
  anchors: () => Promise<readonly X509Certificate[]>;
  trustDomain: string;
  jwks: ClientJwks;
}

/**
 * RFC 8705 §2: mutual-TLS client authentication. The credential is the certificate of the
 * connection; the client's registration decides what it must be:
 * - `tls_client_auth` (§2.1, PKI): it chains to the workload CA and its SPIFFE ID is the
 *   client's (`tls_client_auth_san_uri`, always `spiffe://<trust domain>/svc/<client_id>`);
 * - `self_signed_tls_client_auth` (§2.2): it is one of the certificates (x5c) in the client's
 *   registered JWKS, and currently valid.
 * Present only when the request carries no other credentials: a certificate shown beside a
 * secret or an assertion binds the token (§3) but does not authenticate. `client_id` is read
 * from the request (§2 makes it REQUIRED) or, for a workload certificate, from its SPIFFE ID.
 */
export function tlsClientAuth(deps: TlsClientAuthDeps): ClientAuthMethod {
  const serviceClientIdOf = (cert: X509Certificate): string | undefined => {
    const id = spiffeIdOfCertificate(cert);
    return id === undefined ? undefined : serviceClientId(id, deps.trustDomain);
  };
  const certOf = (request: Parameters<ClientAuthMethod['present']>[2]): PresentedCertificate | undefined =>
    deps.certificate(request);

  const selfSigned = async (
    presented: PresentedCertificate,
    client: Parameters<Awaited<ReturnType<ClientAuthMethod['read']>>['verify']>[0],
  ): Promise<void> => {
    const now = deps.clock.now();
    if (Date.parse(presented.cert.validFrom) > now || Date.parse(presented.cert.validTo) < now)
      throw invalidClient('the client certificate is expired or not yet valid', 'certificate_untrusted');
    const der = presented.cert.raw.toString('base64');
    const registered = (set: { keys: Record<string, unknown>[] }) =>
      set.keys.some((k) => Array.isArray(k.x5c) && k.x5c[0] === der);
    if (registered(await deps.jwks.keySet(client))) return;
    // A certificate registered a moment ago at the jwks_uri: look once more (the cooldown applies).
    if (client.metadata.jwks_uri && registered(await deps.jwks.keySet(client, { refresh: true }))) return;
    throw invalidClient('the client certificate is not one the client registered', 'certificate_mismatch');
  };

  return {
    method: 'tls_client_auth',
    accepts: ['tls_client_auth', 'self_signed_tls_client_auth'],
    present: (form, authorization, request) =>
      authorization === undefined &&
      !form.has('client_secret') &&
      !form.has('client_assertion') &&
      !form.has('client_assertion_type') &&
      certOf(request) !== undefined,
    read(form, _authorization, request) {
      const presented = certOf(request)!;
      const clientId = param(form, 'client_id') ?? serviceClientIdOf(presented.cert);
      if (!clientId)
        throw invalidClient('client_id is required with a client certificate (RFC 8705 §2)', 'malformed_credentials');
      return {
        method: 'tls_client_auth',
        clientId,
        async verify(client) {
          if (client.metadata.token_endpoint_auth_method === 'self_signed_tls_client_auth')
            return selfSigned(presented, client);
          const chain = verifyClientChain(presented.cert, presented.chain, await deps.anchors(), deps.clock.now());
          if (!chain.ok) throw invalidClient(`client certificate rejected: ${chain.reason}`, 'certificate_untrusted');
          const expected =
            client.metadata.tls_client_auth_san_uri ?? serviceSpiffeId(deps.trustDomain, client.clientId);
          const presentedId = spiffeIdOfCertificate(presented.cert);
          if (presentedId !== expected) {
            const err = invalidClient('the client certificate names another identity', 'certificate_mismatch');
            err.auditDetail = { presented_spiffe_id: (presentedId ?? 'none').slice(0, 256) };
            throw err;
          }
        },
      };
    },
  };
}
