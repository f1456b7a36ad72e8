// A service that accepts Latchkey access tokens, verified in-process by @latchkey/sdk: keys and
// revocations are kept fresh from the IdP's JWKS and feeds; no IdP call on the request path.
// Run: see the README's walk-through, step 4 (NODE_EXTRA_CA_CERTS=.latchkey/ca.pem, the IdP's
//      LATCHKEY_ISSUER, PORT, and this service's ORDERS_CLIENT_ID / ORDERS_CLIENT_SECRET).
import { realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createVerifier, type Verifier } from '@latchkey/sdk/verify';
import { authenticate } from '@latchkey/sdk/node';

export interface OrdersServiceOptions {
  issuer: string;
  audience: string;
  /** This service's own client credentials, to read the revocation feed. */
  credentials?: { clientId: string; clientSecret: string };
  port?: number;
  fetch?: typeof fetch;
}

export async function startOrdersService(
  options: OrdersServiceOptions,
): Promise<{ server: Server; verifier: Verifier }> {
  const verifier = await createVerifier({
    issuer: options.issuer,
    audience: options.audience,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const server = createServer(async (req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(verifier.health()));
      return;
    }
    const claims = await authenticate(req, res, { verifier, scope: 'orders:read', realm: 'orders' });
    if (!claims) return;
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ orders: [], caller: claims.client_id }));
  });
  server.on('close', () => verifier.close());
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  return { server, verifier };
}

// Run directly (not imported by a test): compare real paths, so a linked checkout works too.
if (process.argv[1] !== undefined && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])) {
  const issuer = process.env.LATCHKEY_ISSUER ?? 'https://localhost:8443';
  const id = process.env.ORDERS_CLIENT_ID;
  const secret = process.env.ORDERS_CLIENT_SECRET;
  const { server } = await startOrdersService({
    issuer,
    audience: process.env.ORDERS_AUDIENCE ?? 'https://orders.internal',
    port: Number(process.env.PORT ?? 9000),
    ...(id && secret ? { credentials: { clientId: id, clientSecret: secret } } : {}),
  });
  const a = server.address();
  console.log(
    `orders service on http://127.0.0.1:${typeof a === 'object' && a ? a.port : ''}, trusting tokens from ${issuer}`,
  );
}
