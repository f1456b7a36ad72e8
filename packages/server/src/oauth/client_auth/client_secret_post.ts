import { invalidClient } from '../../errors.ts';
import { param } from '../../http/form.ts';
import { verifySecret } from '../../secrets.ts';
import type { ClientAuthMethod } from './types.ts';

/** RFC 6749 §2.3.1: client_id and client_secret in the request body. */
export function clientSecretPost(secretHashKey: Buffer): ClientAuthMethod {
  return {
    method: 'client_secret_post',
    present: (form) => form.has('client_secret'),
    read(form) {
      const secret = param(form, 'client_secret') as string;
      const clientId = param(form, 'client_id');
      if (!clientId) throw invalidClient('client_secret_post needs client_id', 'malformed_credentials');
      return {
        method: 'client_secret_post',
        clientId,
        async verify(client) {
          if (!verifySecret(secretHashKey, secret, client.secretHash))
            throw invalidClient('client authentication failed', 'bad_secret');
        },
      };
    },
  };
}
