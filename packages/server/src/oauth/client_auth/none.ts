import { invalidClient } from '../../errors.ts';
import { param } from '../../http/form.ts';
import type { ClientCertificateReader } from '../../tls/client_certificate.ts';
import type { ClientAuthMethod } from './types.ts';

/**
 * RFC 6749 §2.1 public clients (`token_endpoint_auth_method: none`, RFC 7591 §2): the client_id
 * alone, when no other credential is sent (no Authorization header, secret, assertion or client
 * certificate). Accepted only for a client registered this way, and only at /token, where such a
 * client has nothing but codes to redeem — each bound by PKCE to the browser that asked for it.
 */
export function publicClient(certificate: ClientCertificateReader): ClientAuthMethod {
  return {
    method: 'none',
    present: (form, authorization, request) =>
      authorization === undefined &&
      form.has('client_id') &&
      !form.has('client_secret') &&
      !form.has('client_assertion') &&
      !form.has('client_assertion_type') &&
      certificate(request) === undefined,
    read(form) {
      const clientId = param(form, 'client_id');
      if (!clientId) throw invalidClient('client_id is missing', 'malformed_credentials');
      return { method: 'none', clientId, verify: async () => {} };
    },
  };
}
