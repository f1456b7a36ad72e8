// Two services a user's request travels through, with @latchkey/sdk: the gateway verifies the
// user's token, starts a Transaction Token for the request, and calls orders on the user's behalf
// (RFC 8693 token exchange: the user stays `sub`, the gateway is named in `act`); orders verifies
// both tokens and answers who the request is for, which services it passed and its transaction id.
// Run: see the README's walk-through, step 6 (NODE_EXTRA_CA_CERTS=.latchkey/ca.pem, LATCHKEY_ISSUER,
//      PORT, and the two services' GATEWAY_CLIENT_* / ORDERS_CLIENT_* credentials).
import { realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { authenticate, transactionOf, withTransaction } from '@latchkey/sdk/node';
import { createTokenClient } from '@latchkey/sdk/token-client';
import { actorChain, createVerifier } from '@latchkey/sdk/verify';

type Credentials = { clientId: string; clientSecret: string };

export interface DelegationChainOptions {
  issuer: string;
  gateway: Credentials & { audience: string };
  orders: Credentials & { audience: string };
  port?: number;
  fetch?: typeof fetch;
}

export async function startDelegationChain(
  options: DelegationChainOptions,
): Promise<{ gateway: Server; orders: Server }> {
  const common = { issuer: options.issuer, ...(options.fetch ? { fetch: options.fetch } : {}) };
  const listen = async (server: Server, port: number) => {
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  };

  // orders: the user's token as exchanged by the gateway, and the request's Transaction Token.
  const ordersVerifier = await createVerifier({
    ...common,
    audience: options.orders.audience,
    credentials: options.orders,
  });
  const orders = createServer(async (req, res) => {
    const claims = await authenticate(req, res, { verifier: ordersVerifier, transactionToken: 'required' });
    if (!claims) return;
    const txn = transactionOf(req)!.claims;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        user: claims.sub,
        caller: claims.client_id,
        chain: actorChain(claims),
        txn: txn.txn,
        order: txn.tctx,
      }),
    );
  });
  orders.on('close', () => ordersVerifier.close());
  const ordersPort = await listen(orders, 0);

  // gateway: the user's own token; a Transaction Token per request; orders called on the user's behalf.
  const gatewayVerifier = await createVerifier({
    ...common,
    audience: options.gateway.audience,
    credentials: options.gateway,
  });
  const tokens = createTokenClient({ ...common, ...options.gateway });
  const gateway = createServer(async (req, res) => {
    const claims = await authenticate(req, res, { verifier: gatewayVerifier });
    if (!claims) return;
    const userToken = (req.headers.authorization ?? '').slice('Bearer '.length);
    try {
      const token = await tokens.transactionToken({
        subjectToken: userToken,
        scope: claims.scope ?? '',
        requestContext: { req_ip: req.socket.remoteAddress },
        requestDetails: { order: 42, action: 'buy' },
      });
      const txn = { token, claims: await gatewayVerifier.verifyTransactionToken(token) };
      const ordersFetch = tokens.fetchOnBehalf({ subjectToken: userToken, audience: options.orders.audience });
      const answer = await withTransaction(txn, () =>
        ordersFetch(`http://127.0.0.1:${ordersPort}/buy`, { method: 'POST' }),
      );
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
    } catch (err) {
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
    }
  });
  gateway.on('close', () => {
    gatewayVerifier.close();
    orders.close();
  });
  await listen(gateway, options.port ?? 0);
  return { gateway, orders };
}

// Run directly (not imported by a test): compare real paths, so a linked checkout works too.
if (process.argv[1] !== undefined && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])) {
  const env = (name: string): string => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is required`);
    return v;
  };
  const { gateway } = await startDelegationChain({
    issuer: process.env.LATCHKEY_ISSUER ?? 'https://localhost:8443',
    port: Number(process.env.PORT ?? 9001),
    gateway: {
      clientId: env('GATEWAY_CLIENT_ID'),
      clientSecret: env('GATEWAY_CLIENT_SECRET'),
      audience: process.env.GATEWAY_AUDIENCE ?? 'https://gateway.internal',
    },
    orders: {
      clientId: env('ORDERS_CLIENT_ID'),
      clientSecret: env('ORDERS_CLIENT_SECRET'),
      audience: process.env.ORDERS_AUDIENCE ?? 'https://orders.internal',
    },
  });
  console.log(`gateway on http://127.0.0.1:${(gateway.address() as AddressInfo).port}, orders behind it`);
}
