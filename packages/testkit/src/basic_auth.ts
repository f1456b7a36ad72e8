import { basicAuthorization } from '@latchkey/protocol';

/**
 * An RFC 6749 §2.3.1 Basic header: id and secret form-urlencoded, joined by ':', base64. Takes a
 * registration response or an id and a secret.
 */
export function basicAuth(
  client: { client_id: string; client_secret: string } | Record<string, string> | string,
  secret?: string,
): string {
  const [id, sec] =
    typeof client === 'string' ? [client, secret ?? ''] : [client.client_id ?? '', client.client_secret ?? ''];
  return basicAuthorization(id, sec);
}
