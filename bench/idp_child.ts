// Child process for the benchmarks: a real IdP (HTTPS, SQLite unless a database URL is given) plus
// one registered client. argv[2]: 'token' (audit on), 'token-audit-off', 'ingest' (POST /audit/events,
// batches of 200 decision events) or 'certificate' (POST /workload/certificate with one P-256 CSR);
// argv[3]: optional PostgreSQL URL. 'token-logged' is 'token' with the production log level (info:
// one access line per request, written to /dev/null) instead of the tests' silent logger. 'token-status-off' is
// 'token' with Token Status List references turned off (issue 17: what the status entry costs).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestIdp, workloadCsr } from '@latchkey/testkit';
import { pino } from 'pino';
import { reportCpuOnRequest } from './cpu.ts';
import { recordFeedDeliveries } from './feed_spans.ts';

const mode = process.argv[2] ?? 'token';
// The propagation benchmark reads when the IdP handed each revocation to every stream, from the
// IdP's own latchkey.feed.deliver spans (registered before the IdP starts).
if (process.env.BENCH_FEED_SPANS) recordFeedDeliveries();
const databaseUrl = process.argv[3];
const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'));
const t = await startTestIdp({
  dataDir,
  databaseUrl,
  ...(mode === 'token-logged' ? { logger: pino({ level: 'info' }, pino.destination('/dev/null')) } : {}),
  config: {
    feedMaxStreamsPerClient: 20_000,
    feedMaxStreams: 20_000,
    maxConnections: 25_000,
    ...(mode === 'token-status-off' ? { statusList: false } : {}),
    // Replicas of one deployment share their master key (bench/replica_scaling.ts).
    ...(process.env.BENCH_MASTER_KEY ? { masterKey: process.env.BENCH_MASTER_KEY } : {}),
  },
  benchmarkWithoutAudit: mode === 'token-audit-off',
});
const c = await t.register({ audiences: ['https://inventory.internal'], scope: 'stock:read' });
let authorization = `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`;
// 'exchange' and 'txn' (issue 16): another service exchanges c's token (RFC 8693) for one to call
// inventory on c's behalf, or for a Transaction Token; a Cedar permit allows it.
let exchangeBody = '';
let exchangeBodies: string[] | undefined;
if (mode === 'exchange' || mode === 'exchange-new' || mode === 'txn') {
  const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const trustDomain = ((await (await t.fetch(`${t.issuer}/.well-known/openid-configuration`)).json()) as any)
    .transaction_token_audience as string;
  const actor = await t.register({
    client_id: 'gateway',
    grant_types: ['client_credentials', EXCHANGE],
    audiences: ['https://gateway.internal'],
  });
  const published = await t.admin('/admin/policy', {
    schema: { 'a.cedarschema': 'entity Role;' },
    policies: {
      'gateway-acts':
        'permit(principal == Latchkey::Client::"gateway", action == Latchkey::Action::"exchange", resource);',
    },
    entities: [],
  });
  if (published.status !== 201) throw new Error(`policy: ${published.status}`);
  await t.admin(
    `/admin/clients/${c.client_id}`,
    { audiences: ['https://inventory.internal'], scope: 'stock:read', access_token_ttl: 3600 },
    'PUT',
  );
  const subject = await t.post('/token', { grant_type: 'client_credentials', scope: 'stock:read' }, { authorization });
  const form = new URLSearchParams({
    grant_type: EXCHANGE,
    subject_token: subject.body.access_token,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    ...(mode === 'txn'
      ? {
          requested_token_type: 'urn:ietf:params:oauth:token-type:txn_token',
          audience: trustDomain,
          scope: 'stock:read',
        }
      : { audience: 'https://inventory.internal' }),
  });
  exchangeBody = form.toString();
  if (mode === 'exchange-new') {
    // More subject tokens than the IdP remembers as verified (10,000), used in turn: every one is verified anew.
    exchangeBodies = [];
    for (let i = 0; i < 15_000; i++) {
      const s = await t.post('/token', { grant_type: 'client_credentials', scope: 'stock:read' }, { authorization });
      form.set('subject_token', s.body.access_token);
      exchangeBodies.push(form.toString());
    }
  }
  authorization = `Basic ${Buffer.from(`gateway:${actor.client_secret}`).toString('base64')}`;
}
const sample = await t.post(
  '/token',
  exchangeBody
    ? Object.fromEntries(new URLSearchParams(exchangeBody))
    : { grant_type: 'client_credentials', scope: 'stock:read' },
  { authorization },
);
if (typeof sample.body.access_token !== 'string') throw new Error(`sample token: ${JSON.stringify(sample.body)}`);
const events = Array.from({ length: 200 }, (_, i) => ({
  type: 'authz.decision',
  outcome: i % 10 === 0 ? 'failure' : 'success',
  actor: `Service::"checkout-${i % 7}"`,
  target: `Order::"${i}"`,
  reason: i % 10 === 0 ? 'no permit' : 'policy0',
  request_id: `req-${i}`,
  detail: { action: 'Action::"read"' },
}));
const csr = mode === 'certificate' ? (await workloadCsr()).csrPem : '';
const path = mode === 'ingest' ? '/audit/events' : mode === 'certificate' ? '/workload/certificate' : '/token';
reportCpuOnRequest(
  {
    url: `${t.issuer}${path}`,
    authorization,
    body:
      mode === 'ingest'
        ? JSON.stringify({ events })
        : mode === 'certificate'
          ? JSON.stringify({ csr })
          : exchangeBody || 'grant_type=client_credentials&scope=stock%3Aread',
    ...(mode === 'ingest' || mode === 'certificate' ? { contentType: 'application/json' } : {}),
    ...(exchangeBodies ? { bodies: exchangeBodies } : {}),
    tokenBytes: (sample.body.access_token as string).length,
    issuer: t.issuer,
    ...(t.caPem ? { ca: t.caPem } : {}),
  },
  async () => {
    await t.idp.close();
    rmSync(dataDir, { recursive: true, force: true });
  },
);
