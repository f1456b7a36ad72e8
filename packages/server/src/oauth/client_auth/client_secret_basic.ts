import { invalidClient, invalidRequest } from '../../errors.ts';
import { verifySecret } from '../../secrets.ts';
import type { ClientAuthMethod } from './types.ts';

/** RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined by ':' and base64-encoded. */
function formDecode(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

export function clientSecretBasic(secretHashKey: Buffer): ClientAuthMethod {
  return {
    method: 'client_secret_basic',
    present: (_form, authorization) => authorization !== undefined && /^basic\s/i.test(authorization),
    read(_form, authorization) {
      const encoded = (authorization ?? '').replace(/^basic\s+/i, '').trim();
      if (!/^[A-Za-z0-9+/]+=*$/.test(encoded))
        throw invalidClient('malformed Basic credentials', 'malformed_credentials');
      const decoded = Buffer.from(encoded, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 1) throw invalidClient('malformed Basic credentials', 'malformed_credentials');
      let clientId: string;
      let secret: string;
      try {
        clientId = formDecode(decoded.slice(0, colon));
        secret = formDecode(decoded.slice(colon + 1));
      } catch {
        throw invalidRequest('Basic credentials are not form-urlencoded');
      }
      return {
        method: 'client_secret_basic',
        clientId,
        async verify(client) {
          if (!verifySecret(secretHashKey, secret, client.secretHash))
            throw invalidClient('client authentication failed', 'bad_secret');
        },
      };
    },
  };
}
