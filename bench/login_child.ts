// Child process of the sign-in benchmark: a real IdP (HTTPS; SQLite, or PostgreSQL when argv[2] is
// a URL) with a public client registered for authorization_code and refresh_token, and one user.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestIdp } from '@latchkey/testkit';
import { reportCpuOnRequest } from './cpu.ts';

const BENCH_PASSWORD = 'benchmark passphrase, long enough';
const BENCH_REDIRECT = 'http://127.0.0.1/callback';

const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-login-'));
const t = await startTestIdp({
  dataDir,
  databaseUrl: process.argv[2] || undefined,
  // Sign-ins from one address at benchmark rates are no attack: lift the detectors' and lockout's thresholds.
  config: { loginSourceFailures: 1_000_000, detectNewSourceLogins: false },
});
await t.register({
  client_id: 'bench-app',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  redirect_uris: [BENCH_REDIRECT],
  audiences: ['https://orders.internal'],
});
for (let i = 0; i < 8; i++) await t.admin('/admin/users', { username: `bench${i}`, password: BENCH_PASSWORD });
reportCpuOnRequest(
  {
    url: `${t.issuer}/authorize`,
    authorization: '',
    body: '',
    tokenBytes: 0,
    issuer: t.issuer,
    ...(t.caPem ? { ca: t.caPem } : {}),
  },
  async () => {
    await t.idp.close();
    rmSync(dataDir, { recursive: true, force: true });
  },
);
