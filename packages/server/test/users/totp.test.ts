import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { base32, matchTotp, newTotpSecret, otpauthUri, totpCode } from '../../src/users/totp.ts';

const exec = promisify(execFile);

test('RFC 6238 appendix B test vectors (SHA-1, the 20-byte ASCII secret), last six digits', () => {
  const secret = Buffer.from('12345678901234567890');
  const vectors: [number, string][] = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ];
  for (const [time, eight] of vectors)
    assert.equal(totpCode(secret, Math.floor(time / 30)), eight.slice(-6), String(time));
});

test('oathtool (an implementation no one here wrote) gives the same codes from the base32 secret', async () => {
  const secret = newTotpSecret();
  for (const time of [1_800_000_000, 1_800_000_030, 2_100_000_017]) {
    const { stdout } = await exec('oathtool', ['--totp', '-b', base32(secret), '--now', `@${time}`]);
    assert.equal(stdout.trim(), totpCode(secret, Math.floor(time / 30)), String(time));
  }
});

test('one step of drift either way; a code once; malformed codes never', () => {
  const secret = newTotpSecret();
  const now = 1_800_000_010;
  const step = Math.floor(now / 30);
  assert.equal(matchTotp(secret, totpCode(secret, step), now, null), step);
  assert.equal(matchTotp(secret, totpCode(secret, step - 1), now, null), step - 1);
  assert.equal(matchTotp(secret, totpCode(secret, step + 1), now, null), step + 1);
  assert.equal(matchTotp(secret, totpCode(secret, step + 2), now, null), undefined);
  assert.equal(matchTotp(secret, totpCode(secret, step), now, step), undefined, 'used already');
  assert.equal(matchTotp(secret, totpCode(secret, step + 1), now, step), step + 1);
  for (const bad of ['', '12345', '1234567', 'abcdef', ' 123456'])
    assert.equal(matchTotp(secret, bad, now, null), undefined);
});

test('base32 and the otpauth URI', () => {
  assert.equal(base32(Buffer.from('foobar')), 'MZXW6YTBOI', 'RFC 4648 §10 without padding');
  const uri = new URL(otpauthUri(Buffer.from('12345678901234567890'), 'Latchkey', 'alice@example.com'));
  assert.equal(uri.protocol, 'otpauth:');
  assert.equal(uri.searchParams.get('secret'), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  assert.equal(uri.searchParams.get('issuer'), 'Latchkey');
});
