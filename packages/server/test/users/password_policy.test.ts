import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PasswordPolicy } from '../../src/users/password_policy.ts';

test('length in characters (code points, after NFKC), the bundled breach list, the username; nothing else', () => {
  const policy = new PasswordPolicy({ minLength: 12 });
  assert.equal(policy.check('elevenchars')?.problem, 'too_short');
  assert.equal(policy.check('twelve chars'), undefined, 'spaces count; no composition rules');
  assert.equal(policy.check('🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑'), undefined, 'twelve characters, not 24 UTF-16 units');
  assert.equal(policy.check('🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑')?.problem, 'too_short');
  assert.equal(policy.check('x'.repeat(257))?.problem, 'too_long');
  assert.equal(policy.check('x'.repeat(256)), undefined);
  // In zxcvbn's list of common passwords from breaches, whatever the case.
  for (const breached of ['qwerty123456', 'QWERTY123456', '1qaz2wsx3edc'])
    assert.equal(policy.check(breached)?.problem, 'breached', breached);
  assert.equal(policy.check('my name is alice, hi', 'Alice')?.problem, 'contains_username');
  assert.match(policy.check('short')?.message ?? '', /at least 12 characters/);
  assert.equal(new PasswordPolicy({ minLength: 8 }).check('elevenchars'), undefined);
});

test("an operator's own list adds to the bundled one", () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-blocklist-'));
  try {
    const file = join(dir, 'list.txt');
    writeFileSync(file, 'Company-Name-2026\r\n\n  another one here  \n');
    const policy = new PasswordPolicy({ minLength: 12, blocklistFile: file });
    assert.equal(policy.check('company-name-2026')?.problem, 'breached');
    assert.equal(policy.check('another one here')?.problem, 'breached');
    assert.equal(policy.check('qwerty123456')?.problem, 'breached', 'the bundled list still applies');
    assert.equal(policy.check('company-name-2027'), undefined);
    assert.throws(() => new PasswordPolicy({ minLength: 12, blocklistFile: join(dir, 'missing') }).load());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
