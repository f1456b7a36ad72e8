import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = new URL('../../../', import.meta.url).pathname;

// `npm run demo` in its non-interactive mode (issue 19): every narrated step happened as it says,
// and no process is left behind (the IdP, the sidecar and the Python billing service).
test("npm run demo -- --ci: mTLS between the services, tokens, an allowed and a denied decision, a user's request through gateway → orders → billing (Python behind the sidecar) with its act chain and Transaction Token, a rotation without failures, a revocation within a second, an alert, the verified chain, the console; nothing left running", {
  timeout: 180_000,
}, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'demo/run.ts'), '--ci'], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '--conditions=latchkey:source' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  const steps = out
    .split('\n')
    .filter((l) => l.startsWith('DEMO '))
    .map((l) => JSON.parse(l.slice(5)) as { step: string; ok: boolean; says: string; [k: string]: unknown });
  assert.deepEqual(
    steps.map((s) => s.step),
    [
      'idp_started',
      'registered',
      'mtls',
      'token_issued',
      'allowed',
      'denied',
      'user_chain',
      'key_rotated',
      'revoked',
      'alert',
      'audit_verified',
      'console',
      'stopped',
    ],
    out,
  );
  for (const s of steps) assert.ok(s.ok, `${s.step}: ${s.says}`);
  const by = Object.fromEntries(steps.map((s) => [s.step, s]));
  assert.equal(by.key_rotated!.failed, 0);
  assert.ok((by.key_rotated!.requests as number) > 20);
  assert.ok((by.revoked!.enforcedMs as number) < 1000);
  assert.equal(code, 0, out);
  // The human narration is there too, and no process it started is still alive.
  assert.match(out, /✔ revoked the gateway's token: orders refused it \d+ ms after the IdP answered/);
  assert.match(
    by.user_chain!.says,
    /billing \(Python\) saw user [0-9a-f-]{36}, act chain \{"sub":"orders","act":\{"sub":"gateway"\}\}, mTLS peer spiffe:\/\/localhost\/svc\/orders/,
  );
  assert.equal((by.stopped!.pids as number[]).length, 3, 'the IdP, the sidecar and python3');
  for (const pid of by.stopped!.pids as number[])
    assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} is still running`);
});
