// Child process for the benchmark: a real IdP (HTTPS, SQLite, audit on) plus one registered client.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestIdp } from '@latchkey/testkit';
import { reportCpuOnRequest } from './cpu.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'));
const t = await startTestIdp({ dataDir, config: { feedMaxStreamsPerClient: 1000 } });
const c = await t.register({ client_id: 'bench-client', audiences: ['https://inventory.internal'], scope: 'stock:read' });
const sample = await t.post('/token', { grant_type: 'client_credentials', scope: 'stock:read' }, { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` });
reportCpuOnRequest({
  url: `${t.issuer}/token`,
  authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`,
  body: 'grant_type=client_credentials&scope=stock%3Aread',
  tokenBytes: (sample.body.access_token as string).length,
  issuer: t.issuer,
  ...(t.caPem ? { ca: t.caPem } : {}),
}, async () => {
  await t.idp.close();
  rmSync(dataDir, { recursive: true, force: true });
});
