import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Authorizer, createAuthorizer } from '@latchkey/sdk/authorize';
import { createAuditQueue, type AuditQueue } from '@latchkey/sdk/audit';
import { authenticate, transactionOf, withTransaction } from '@latchkey/sdk/node';
import { createTokenClient, type TokenClient } from '@latchkey/sdk/token-client';
import { actorChain, createVerifier, type Verifier } from '@latchkey/sdk/verify';
import { createWorkloadIdentity, peerSpiffeId, type WorkloadIdentity } from '@latchkey/sdk/workload';
import { CLI_MAIN } from '@latchkey/testkit';

export const GATEWAY = 'https://gateway.demo';
export const ORDERS = 'https://orders.demo';
export const BILLING = 'https://billing.demo';

/** One of the demo's services: a real server on loopback, or a process of its own. */
export interface DemoService {
  name: string;
  url: string;
  /** Child processes it runs (the test checks none is left behind). */
  pids: number[];
  close(): Promise<void>;
}

interface Common {
  issuer: string;
  credentials: { clientId: string; clientSecret: string };
  /** The IdP's HTTPS CA (its own local CA in the demo). */
  idpCa: string;
  /** fetch trusting that CA, for the SDK's calls to the IdP. */
  fetch: typeof fetch;
  trustDomain: string;
}

const listen = (server: Server, scheme: 'http' | 'https'): Promise<string> =>
  new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

const send = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

const svc = (o: Common, name: string) => `spiffe://${o.trustDomain}/svc/${name}`;

/** A workload identity (an X.509-SVID from the IdP's CA, renewed by itself) accepting only `peers`. */
const identityOf = (o: Common, peers: string[]): Promise<WorkloadIdentity> =>
  createWorkloadIdentity({
    issuer: o.issuer,
    credentials: o.credentials,
    idpCa: o.idpCa,
    authorizePeer: peers.map((p) => svc(o, p)),
  });

/**
 * The orders service, TypeScript with the SDK: an mTLS server (its workload certificate; only the
 * gateway may connect), tokens verified locally (keys and revocations from the IdP's feed; a
 * certificate-bound token only over its certificate), Cedar decided in-process, every decision in
 * the audit trail. For a user's request it calls billing on the user's behalf (token exchange: the
 * `act` chain grows) inside the request's Transaction Token, over mTLS.
 */
export async function startOrders(
  o: Common & { billing: () => string },
): Promise<DemoService & { verifier: Verifier; authorizer: Authorizer; audit: AuditQueue; identity: WorkloadIdentity }> {
  const common = { issuer: o.issuer, credentials: o.credentials, fetch: o.fetch };
  const audit = createAuditQueue(common);
  const verifier = await createVerifier({ ...common, audience: ORDERS, audit });
  const authorizer = await createAuthorizer({ ...common, audit });
  const identity = await identityOf(o, ['gateway', 'billing']);
  const tokens = createTokenClient({
    issuer: o.issuer,
    clientId: o.credentials.clientId,
    clientSecret: o.credentials.clientSecret,
    workload: identity,
  });
  const decide = (claims: Awaited<ReturnType<Verifier['verify']>>, action: string, order: string) =>
    authorizer.authorize({
      principal: claims,
      action: `Orders::Action::"${action}"`,
      resource: { type: 'Orders::Order', id: order, attrs: { tenant: 'acme' } },
    });

  const server = identity.createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const invoice = /^\/orders\/([\w-]+)\/invoice$/.exec(req.url ?? '');
    const order = /^\/orders\/([\w-]+)$/.exec(req.url ?? '');
    if (!invoice && !order) return send(res, 404, { error: 'not_found' });
    const claims = await authenticate(req, res, {
      verifier,
      ...(invoice ? { transactionToken: 'required' as const } : {}),
    });
    if (!claims) return;
    const action = req.method === 'DELETE' ? 'cancel' : 'read';
    const d = decide(claims, action, (invoice ?? order)![1]!);
    if (d.decision !== 'allow') return send(res, 403, { error: 'forbidden', action, reasons: d.reasons });
    if (order) return send(res, 200, { order: order[1], action, caller: claims.client_id, policies: d.reasons });
    // On the user's behalf, to billing: a token exchanged for billing's audience, the same Txn-Token.
    const subjectToken = (req.headers.authorization ?? '').slice('Bearer '.length);
    const billingFetch = tokens.fetchOnBehalf({ subjectToken, audience: BILLING });
    const answer = await withTransaction(transactionOf(req)!, () =>
      billingFetch(`${o.billing()}/invoices/${invoice![1]}`),
    ).catch((err: Error) => ({ status: 502, text: async () => JSON.stringify({ error: err.message }) }));
    const body = JSON.parse(await answer.text());
    return send(res, answer.status, {
      order: invoice![1],
      user: claims.sub,
      chain_at_orders: actorChain(claims),
      peer_at_orders: peerSpiffeId(req),
      policies: d.reasons,
      billing: body,
    });
  });
  const url = await listen(server, 'https');
  return {
    name: 'orders',
    url,
    pids: [],
    verifier,
    authorizer,
    audit,
    identity,
    async close() {
      await new Promise((r) => server.close(r));
      server.closeAllConnections?.();
      verifier.close();
      authorizer.close();
      identity.close();
      await audit.close();
    },
  };
}

/**
 * The gateway, TypeScript with the SDK: calls orders over mTLS with tokens bound to its
 * certificate (token client: cached, renewed before they expire, sent by `fetchFor`); for a
 * signed-in user it verifies their token, starts a Transaction Token for the request and calls
 * orders on their behalf (`fetchOnBehalf`).
 */
export async function startGateway(
  o: Common & { orders: string },
): Promise<DemoService & { tokens: TokenClient; identity: WorkloadIdentity }> {
  const identity = await identityOf(o, ['orders']);
  const tokens = createTokenClient({
    issuer: o.issuer,
    clientId: o.credentials.clientId,
    clientSecret: o.credentials.clientSecret,
    workload: identity,
  });
  const verifier = await createVerifier({ issuer: o.issuer, credentials: o.credentials, fetch: o.fetch, audience: GATEWAY });
  const ordersFetch = tokens.fetchFor({ audience: ORDERS });
  const server = createServer(async (req, res) => {
    try {
      const mine = /^\/api\/me\/orders\/([\w-]+)\/invoice$/.exec(req.url ?? '');
      if (mine) {
        const claims = await authenticate(req, res, { verifier });
        if (!claims) return;
        const userToken = (req.headers.authorization ?? '').slice('Bearer '.length);
        const txnToken = await tokens.transactionToken({
          subjectToken: userToken,
          scope: claims.scope ?? '',
          requestDetails: { method: req.method ?? 'GET', path: req.url ?? '/' },
          requestContext: { req_ip: req.socket.remoteAddress ?? '' },
        });
        const txn = { token: txnToken, claims: await verifier.verifyTransactionToken(txnToken) };
        const onBehalf = tokens.fetchOnBehalf({ subjectToken: userToken, audience: ORDERS });
        const upstream = await withTransaction(txn, () => onBehalf(`${o.orders}/orders/${mine[1]}/invoice`));
        const body = JSON.parse(await upstream.text());
        return send(res, upstream.status, { ...body, txn: txn.claims.txn });
      }
      const m = /^\/api\/orders\/([\w-]+)$/.exec(req.url ?? '');
      if (!m) return send(res, 404, { error: 'not_found' });
      const upstream = await ordersFetch(`${o.orders}/orders/${m[1]}`, { method: req.method ?? 'GET' });
      res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text());
    } catch (err) {
      send(res, 502, { error: (err as Error).message });
    }
  });
  const url = await listen(server, 'http');
  return {
    name: 'gateway',
    url,
    pids: [],
    tokens,
    identity,
    async close() {
      await new Promise((r) => server.close(r));
      verifier.close();
      identity.close();
    },
  };
}

/** Waits for a line starting with `prefix` on a child's stdout; rejects if it exits first. */
function lineFrom(child: ChildProcess, prefix: string, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 30 s:\n${out}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith(prefix));
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${out}`));
    });
  });
}

const stopChild = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });

/**
 * Billing: a Python service (standard library only, `demo/billing.py`) that cannot embed the SDK,
 * behind the Latchkey sidecar in its own process (`latchkey sidecar`): mTLS with the sidecar's
 * workload certificate, tokens verified, a Transaction Token required, Cedar decided with the
 * delegation context; billing answers with the identity headers it was given.
 */
export async function startBilling(o: Common & { dir: string }): Promise<DemoService> {
  const python = spawn('python3', [fileURLToPath(new URL('./billing.py', import.meta.url)), '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = (await lineFrom(python, 'listening', 'billing (python3)')).split(' ')[1];
  writeFileSync(join(o.dir, 'idp-ca.pem'), o.idpCa);
  const config = join(o.dir, 'sidecar.json');
  writeFileSync(
    config,
    JSON.stringify(
      {
        idp: { issuer: o.issuer, client_id: o.credentials.clientId, ca_file: join(o.dir, 'idp-ca.pem') },
        audience: BILLING,
        delegation_context: true,
        routes: [
          {
            methods: 'GET',
            path: '/invoices/:id',
            action: 'Billing::Action::"read"',
            resource: { type: 'Billing::Invoice', id: { param: 'id' } },
            transaction_token: 'require',
          },
        ],
        proxy: { listen: { host: '127.0.0.1', port: 0, workload_tls: true }, upstream: `http://127.0.0.1:${port}` },
        listen: { host: '127.0.0.1', port: 0 },
        log_level: 'warn',
      },
      null,
      2,
    ),
  );
  const sidecar = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'sidecar', '--config', config], {
    env: { ...process.env, LATCHKEY_SIDECAR_CLIENT_SECRET: o.credentials.clientSecret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let ready: { proxy: string };
  try {
    ready = JSON.parse(await lineFrom(sidecar, '{"msg":"latchkey-sidecar ready"', 'the sidecar'));
  } catch (err) {
    await stopChild(python);
    await stopChild(sidecar);
    throw err;
  }
  return {
    name: 'billing',
    url: ready.proxy,
    pids: [python.pid!, sidecar.pid!],
    async close() {
      await stopChild(sidecar);
      await stopChild(python);
    },
  };
}
