import type { FastifyReply, FastifyRequest } from 'fastify';

/** The cookies of a request (a header of at most 8 KiB; more is ignored). */
export function cookiesOf(request: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>();
  const header = request.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/**
 * The IdP's own cookies: HttpOnly, for the whole origin, `__Host-` prefixed and Secure on HTTPS
 * (so no subdomain can set or read them). `session` must come along on the top-level navigation
 * from an application (SameSite=Lax); the others never leave the IdP's own pages (Strict).
 */
export class PageCookies {
  private readonly secure: boolean;

  constructor(secure: boolean) {
    this.secure = secure;
  }

  name(what: 'csrf' | 'device' | 'session'): string {
    return this.secure ? `__Host-lk-${what}` : `lk-${what}`;
  }

  read(request: FastifyRequest, what: 'csrf' | 'device' | 'session'): string | undefined {
    return cookiesOf(request).get(this.name(what));
  }

  /** Sets (or, with `maxAge` 0, clears) a cookie; Fastify adds each as a Set-Cookie header of its own. */
  set(reply: FastifyReply, what: 'csrf' | 'device' | 'session', value: string, maxAge: number): void {
    reply.header(
      'set-cookie',
      `${this.name(what)}=${value}; Path=/; HttpOnly; SameSite=${what === 'session' ? 'Lax' : 'Strict'}; Max-Age=${maxAge}${this.secure ? '; Secure' : ''}`,
    );
  }
}
