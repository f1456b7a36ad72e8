import type { FastifyRequest } from 'fastify';
import { OAuthError } from '../errors.ts';

/** RFC 6750 §3: a 401 with `WWW-Authenticate: Bearer`, naming the error when a token was sent. */
export function invalidToken(description: string, realm = 'latchkey'): OAuthError {
  return new OAuthError('invalid_token', description, 401, {
    'www-authenticate': `Bearer realm="${realm}", error="invalid_token"`,
  });
}

/** The bearer token of the Authorization header (RFC 6750 §2.1, scheme case-insensitive), or undefined. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (!h) return undefined;
  const m = /^bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(h);
  return m?.[1];
}

/** Throws RFC 6750's 401 when the request carries no bearer token at all. */
export function requireBearer(request: FastifyRequest, realm = 'latchkey'): string {
  const token = bearerToken(request);
  if (!token)
    throw new OAuthError('invalid_token', 'a bearer token is required', 401, {
      'www-authenticate': `Bearer realm="${realm}"`,
    });
  return token;
}
