// Profiles token exchange (argv[2]: 'txn' for Transaction Tokens, else access tokens): a real IdP
// under autocannon for BENCH_DURATION seconds, in this process (run with --cpu-prof). A development
// aid, not part of `npm run bench`.
import autocannon from 'autocannon';
import { startTestIdp } from '@latchkey/testkit';

const txn = process.argv[2] === 'txn';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const t = await startTestIdp({});
const trustDomain = (
  (await (await t.fetch(`${t.issuer}/.well-known/openid-configuration`)).json()) as {
    transaction_token_audience: string;
  }
).transaction_token_audience;
const c = await t.register({ audiences: ['https://inventory.internal'], scope: 'stock:read', access_token_ttl: 3600 });
const actor = await t.register({
  client_id: 'gateway',
  grant_types: ['client_credentials', EXCHANGE],
  audiences: ['https://gateway.internal'],
});
await t.admin('/admin/policy', {
  schema: { 'a.cedarschema': 'entity Role;' },
  policies: {
    p: 'permit(principal == Latchkey::Client::"gateway", action == Latchkey::Action::"exchange", resource);',
  },
  entities: [],
});
const subject = await t.post(
  '/token',
  { grant_type: 'client_credentials', scope: 'stock:read' },
  {
    authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`,
  },
);
const body = new URLSearchParams({
  grant_type: EXCHANGE,
  subject_token: subject.body.access_token,
  subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  ...(txn
    ? { requested_token_type: 'urn:ietf:params:oauth:token-type:txn_token', audience: trustDomain, scope: 'stock:read' }
    : { audience: 'https://inventory.internal' }),
}).toString();
const result = await autocannon({
  url: `${t.issuer}/token`,
  method: 'POST',
  connections: 16,
  duration: Number(process.env.BENCH_DURATION ?? 5),
  headers: {
    authorization: `Basic ${Buffer.from(`gateway:${actor.client_secret}`).toString('base64')}`,
    'content-type': 'application/x-www-form-urlencoded',
  },
  body,
  tlsOptions: { rejectUnauthorized: false },
} as autocannon.Options);
console.log(`${result.requests.average} tokens/s, non-2xx ${result.non2xx}`);
await t.close();
