// A service that accepts Latchkey access tokens, verified locally with jose against the IdP's
// JWKS (RFC 9068 §4). Run: LATCHKEY_ISSUER=https://localhost:8443 NODE_EXTRA_CA_CERTS=.latchkey/ca.pem \
//   npx tsx examples/orders_service.ts
// (@latchkey/sdk will replace this with a verifier that also honours revocations and keeps its
// caches fresh by push; see docs/walkthrough.md.)
import { createServer, type Server } from 'node:http';
import { createRemoteJWKSet, jwtVerify, customFetch, type FetchImplementation } from 'jose';

export interface OrdersServiceOptions {
  issuer: string;
  audience: string;
  port?: number;
  fetch?: FetchImplementation;
}

export function startOrdersService(options: OrdersServiceOptions): Promise<Server> {
  const jwks = createRemoteJWKSet(new URL(`${options.issuer}/jwks`), options.fetch ? { [customFetch]: options.fetch } : {});
  const server = createServer(async (req, res) => {
    const m = /^bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="orders"' }).end();
      return;
    }
    try {
      const { payload } = await jwtVerify(m[1] as string, jwks, { issuer: options.issuer, audience: options.audience, typ: 'at+jwt', algorithms: ['ES256', 'EdDSA', 'RS256'] });
      const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
      if (!scopes.includes('orders:read')) {
        res.writeHead(403, { 'www-authenticate': 'Bearer realm="orders", error="insufficient_scope", scope="orders:read"' }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ orders: [], caller: payload.client_id }));
    } catch {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="orders", error="invalid_token"' }).end();
    }
  });
  return new Promise((resolve) => server.listen(options.port ?? 0, '127.0.0.1', () => resolve(server)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const issuer = process.env.LATCHKEY_ISSUER ?? 'https://localhost:8443';
  const server = await startOrdersService({ issuer, audience: process.env.ORDERS_AUDIENCE ?? 'https://orders.internal', port: Number(process.env.PORT ?? 9000) });
  const a = server.address();
  console.log(`orders service on http://127.0.0.1:${typeof a === 'object' && a ? a.port : ''}, trusting tokens from ${issuer}`);
}
