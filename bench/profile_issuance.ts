// Profiles token issuance: a real IdP under autocannon for BENCH_DURATION seconds, in this process
// (run with --cpu-prof to write a profile). A development aid, not part of `npm run bench`.
import autocannon from 'autocannon';
import { startTestIdp } from '@latchkey/testkit';

const t = await startTestIdp({ config: process.env.LK_STATUS_OFF ? { statusList: false } : {} });
const c = await t.register({ audiences: ['https://inventory.internal'], scope: 'stock:read' });
const authorization = `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`;
const result = await autocannon({
  url: `${t.issuer}/token`,
  method: 'POST',
  connections: 16,
  duration: Number(process.env.BENCH_DURATION ?? 5),
  headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
  body: 'grant_type=client_credentials&scope=stock%3Aread',
  tlsOptions: { rejectUnauthorized: false },
} as autocannon.Options);
console.log(`${result.requests.average} tokens/s, non-2xx ${result.non2xx}`);
await t.close();
