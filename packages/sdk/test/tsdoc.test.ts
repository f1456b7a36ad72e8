import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const SRC = new URL('../src/', import.meta.url);
const ENTRY_POINTS = [
  'connection/index.ts',
  'verify/index.ts',
  'token_client/index.ts',
  'audit/index.ts',
  'authorize/index.ts',
  'workload/index.ts',
  'middleware/fastify.ts',
  'middleware/express.ts',
  'middleware/node.ts',
  'index.ts',
];

test('every public SDK function, class and constant carries TSDoc with an @example', () => {
  const missing: string[] = [];
  const files = new Set<string>();
  for (const entry of ENTRY_POINTS) {
    const text = readFileSync(new URL(entry, SRC), 'utf8');
    files.add(entry);
    for (const m of text.matchAll(/from '\.\/([^']+)'/g))
      files.add(new URL(m[1]!, new URL(entry, SRC)).pathname.split('/src/')[1]!);
  }
  let checked = 0;
  for (const file of files) {
    const text = readFileSync(new URL(file, SRC), 'utf8');
    for (const m of text.matchAll(/^export (?:async )?(?:function|class|const) (\w+)/gm)) {
      checked++;
      const before = text.slice(0, m.index);
      const doc = before.slice(before.lastIndexOf('/**'));
      if (!doc.includes('*/') || !doc.includes('@example') || before.trimEnd().slice(-2) !== '*/')
        missing.push(`${file}: ${m[1]}`);
    }
  }
  assert.ok(checked >= 8, `checked only ${checked} exports`);
  assert.deepEqual(missing, []);
});
