import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '@latchkey/protocol';

test('docs/errors.md lists exactly the internal error codes', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  const internal = documented.filter((c) => (ERROR_CODES as readonly string[]).includes(c as string));
  assert.deepEqual([...internal].sort(), [...ERROR_CODES].sort());
  const section = doc.split('## Internal error codes')[1] ?? '';
  const listed = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual([...listed].sort(), [...ERROR_CODES].sort(), 'every internal code documented, nothing extra');
});
