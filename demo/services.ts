import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Authorizer, createAuthorizer } from '@latchkey/sdk/authorize';
import { createAuditQueue, type AuditQueue } from '@latchkey/sdk/audit';
import { createTokenClient, type TokenClient } from '@latchkey/sdk/token-client';
import { createVerifier, type Verifier, VerifyError } from '@latchkey/sdk/verify';

/** One of the demo's services: a real HTTP server on loopback with its own SDK components. */
export interface DemoService {
  name: string;
  url: string;
  close(): Promise<void>;
}

const listen = (server: Server): Promise<string> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

const bearer = (req: IncomingMessage): string | undefined =>
  /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];

/**
 * The orders service: verifies the caller's token locally (SDK verifier: keys and revocations kept
 * fresh from the IdP's feed) and asks Cedar in-process (SDK authorizer) whether it may `read` or
 * `cancel` the order; every decision goes to the IdP's audit trail (SDK audit queue).
 */
export async function startOrders(o: {
  issuer: string;
  credentials: { clientId: string; clientSecret: string };
  fetch: typeof fetch;
}): Promise<DemoService & { verifier: Verifier; authorizer: Authorizer; audit: AuditQueue }> {
  const common = { issuer: o.issuer, credentials: o.credentials, fetch: o.fetch };
  const audit = createAuditQueue(common);
  const verifier = await createVerifier({ ...common, audience: 'https://orders.demo', audit });
  const authorizer = await createAuthorizer({ ...common, audit });
  const server = createServer(async (req, res) => {
    const send = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const m = /^\/orders\/([\w-]+)$/.exec(req.url ?? '');
    if (!m) return send(404, { error: 'not_found' });
    const token = bearer(req);
    if (!token) return send(401, { error: 'invalid_token' });
    let claims: Awaited<ReturnType<Verifier['verify']>>;
    try {
      claims = await verifier.verify(token);
    } catch (err) {
      return send(401, { error: 'invalid_token', code: err instanceof VerifyError ? err.code : 'error' });
    }
    const action = req.method === 'DELETE' ? 'cancel' : 'read';
    const d = authorizer.authorize({
      principal: claims,
      action: `Orders::Action::"${action}"`,
      resource: { type: 'Orders::Order', id: m[1]!, attrs: { tenant: 'acme' } },
    });
    if (d.decision !== 'allow') return send(403, { error: 'forbidden', action, reasons: d.reasons });
    return send(200, { order: m[1], action, caller: claims.client_id, policies: d.reasons });
  });
  const url = await listen(server);
  return {
    name: 'orders',
    url,
    verifier,
    authorizer,
    audit,
    async close() {
      await new Promise((r) => server.close(r));
      verifier.close();
      authorizer.close();
      await audit.close();
    },
  };
}

/**
 * The gateway: takes requests from outside and calls orders with a token of its own (SDK token
 * client: cached, renewed before it expires, sent by `fetchFor`).
 */
export async function startGateway(o: {
  issuer: string;
  credentials: { clientId: string; clientSecret: string };
  fetch: typeof fetch;
  orders: string;
}): Promise<DemoService & { tokens: TokenClient }> {
  const tokens = createTokenClient({
    issuer: o.issuer,
    clientId: o.credentials.clientId,
    clientSecret: o.credentials.clientSecret,
    fetch: o.fetch,
  });
  const ordersFetch = tokens.fetchFor({ audience: 'https://orders.demo' });
  const server = createServer(async (req, res) => {
    const m = /^\/api\/orders\/([\w-]+)$/.exec(req.url ?? '');
    if (!m) return res.writeHead(404).end();
    try {
      const upstream = await ordersFetch(`${o.orders}/orders/${m[1]}`, { method: req.method ?? 'GET' });
      res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text());
    } catch (err) {
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
    }
  });
  const url = await listen(server);
  return {
    name: 'gateway',
    url,
    tokens,
    async close() {
      await new Promise((r) => server.close(r));
    },
  };
}
