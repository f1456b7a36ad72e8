// Issue 12: the README's walk-through runs as written. Every ```sh block of the "Five-minute
// walk-through" section, verbatim and in order, as one bash session at a copy of the repository
// root — only the ports changed (8443, 9000 and 9001 to free ones, LATCHKEY_PORT set to match).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { freePort } from '@latchkey/testkit';

const ROOT = new URL('../../../', import.meta.url).pathname;

/** The shell blocks of one README section, in order. */
export function shellBlocks(markdown: string, section: string): string[] {
  const start = markdown.indexOf(`## ${section}`);
  assert.ok(start >= 0, `no section ${section}`);
  const next = markdown.indexOf('\n## ', start + 3);
  const text = markdown.slice(start, next < 0 ? undefined : next);
  return [...text.matchAll(/^( *)```sh\n([\s\S]*?)^\1```/gm)].map((m) =>
    m[2]!
      .split('\n')
      .map((l) => l.slice(m[1]!.length))
      .join('\n'),
  );
}

test('the README walk-through runs verbatim: start, register (CLI and HTTP), token (curl and CLI), verify in a service, introspect, revoke, a user through two services — and raises no alert', {
  timeout: 180_000,
}, async () => {
  const env: Record<string, string> = { ...process.env } as Record<string, string>;
  for (const k of Object.keys(env)) if (k.startsWith('LATCHKEY_') && !k.startsWith('LATCHKEY_TEST_')) delete env[k];
  delete env.NODE_OPTIONS; // as a user runs it: the built packages, no source condition
  await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, env });
  const blocks = shellBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'), 'Five-minute walk-through');
  assert.ok(blocks.length >= 6, `only ${blocks.length} blocks`);
  const idpPort = await freePort();
  const svcPort = await freePort();
  const chainPort = await freePort();
  const script = blocks
    .join('\n')
    .replace(/\b8443\b/g, String(idpPort))
    .replace(/\b9000\b/g, String(svcPort))
    .replace(/\b9001\b/g, String(chainPort));
  // A fresh root: the repository's files by link, its own .latchkey, logs and JSON files.
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-readme-'));
  for (const f of ['package.json', 'node_modules', 'packages', 'examples', 'tsconfig.json', 'tsconfig.base.json'])
    symlinkSync(join(ROOT, f), join(dir, f));
  const child = spawn(
    'bash',
    [
      '-c',
      `set -euo pipefail\n${script}\necho WALKTHROUGH-DONE\nsleep 1\necho ALERTS-BEGIN\nnpx latchkey alerts --json\necho ALERTS-END\nkill %1 %2 %3 2>/dev/null || true\nwait || true`,
    ],
    {
      cwd: dir,
      env: { ...env, LATCHKEY_PORT: String(idpPort), LATCHKEY_LOG_LEVEL: 'warn', LATCHKEY_SHUTDOWN_GRACE: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 150_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    /* already gone */
  }
  assert.equal(code, 0, `${out}\n${err}\n${readFileSync(join(dir, 'latchkey.log'), 'utf8')}`);
  assert.match(out, /WALKTHROUGH-DONE/);
  // The service answered 200 with the caller, then 401 after the revocation.
  const statuses = [...out.matchAll(/\} (\d{3})$/gm)].map((m) => m[1]);
  assert.deepEqual(statuses, ['200', '401'], out);
  assert.match(out, /"caller":"checkout"/);
  assert.match(out, /"client_id":"billing"/, 'the HTTP registration worked');
  assert.match(out, /"active":true/, 'introspection before the revocation');
  // Step 6: orders saw the user, called by the gateway, and the audit trail follows the txn.
  const chain = JSON.parse(/^(\{"user".*\})$/m.exec(out)?.[1] ?? '{}');
  assert.deepEqual(
    [chain.caller, chain.chain, chain.order],
    ['gateway', ['gateway'], { order: 42, action: 'buy' }],
    out,
  );
  const traced = out
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes(`"txn":"${chain.txn}"`))
    .map((l) => JSON.parse(l))
    .filter((e) => e.type !== undefined);
  assert.deepEqual(
    traced.map((e) => [e.type, e.client_id, e.detail.chain]),
    [
      ['token.exchanged', 'gateway', ['gateway']],
      ['token.exchanged', 'gateway', ['gateway']],
    ],
    'the Transaction Token and the exchange made within it',
  );
  // A newcomer's first `latchkey alerts` is empty: the walk-through provokes nothing.
  const alerts = /ALERTS-BEGIN\n([\s\S]*?)ALERTS-END/.exec(out)![1]!;
  assert.equal(alerts.trim(), '', `the walk-through raised alerts:\n${alerts}`);
});
