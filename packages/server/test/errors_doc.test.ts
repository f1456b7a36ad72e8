import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ADMIN_ERROR_CODES, ERROR_CODES, OAUTH_ERROR_CODES } from '@latchkey/protocol';
import { VERIFY_ERROR_CODES } from '@latchkey/sdk/verify';
import { AUTHORIZER_ERROR_CODES } from '@latchkey/sdk/authorize';
import { TOKEN_CLIENT_ERROR_CODES } from '@latchkey/sdk/token-client';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
/** The codes in the first column of the tables of one section (up to the next `## `). */
const codesIn = (heading: string): string[] => {
  const start = doc.indexOf(`## ${heading}`);
  assert.ok(start >= 0, `docs/errors.md has no section ${heading}`);
  const end = doc.indexOf('\n## ', start + 3);
  return [...doc.slice(start, end < 0 ? undefined : end).matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!).sort();
};

test('docs/errors.md lists exactly the internal error codes', () => {
  assert.deepEqual(codesIn('Internal error codes'), [...ERROR_CODES].sort());
});

test('docs/errors.md lists exactly the admin API error codes', () => {
  assert.deepEqual(codesIn('Admin API errors'), [...ADMIN_ERROR_CODES].sort());
});

test('docs/errors.md lists exactly the OAuth wire error codes Latchkey answers with', () => {
  assert.deepEqual(codesIn('Wire errors'), [...OAUTH_ERROR_CODES].sort());
});

test("docs/errors.md lists exactly the SDK's error codes (verifier, authorizer, token client)", () => {
  assert.deepEqual(
    codesIn('SDK error codes'),
    [...VERIFY_ERROR_CODES, ...AUTHORIZER_ERROR_CODES, ...TOKEN_CLIENT_ERROR_CODES].sort(),
  );
});
