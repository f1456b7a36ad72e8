import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { TokenTable } from '../src/verify/token_table.ts';

// The revocation set's token ids: compared with a Map (the reference) over random operations.
test('TokenTable answers as a Map does: ids of every length, growth, expiry, pruning and shrinking', () => {
  const table = new TokenTable();
  const ref = new Map<string, number>();
  const ids: string[] = [];
  const id = (i: number): string => {
    const kind = i % 7;
    // Latchkey's 16-character ids, shorter and longer ones, prefixes of each other, non-ASCII, one char.
    if (kind === 0) return randomBytes(12).toString('base64url');
    if (kind === 1) return randomBytes(3 + (i % 9)).toString('base64url');
    if (kind === 2) return `${randomBytes(24).toString('base64url')}`;
    if (kind === 3 && ids.length > 0) return ids[ids.length - 1]!.slice(0, -1) || 'x';
    if (kind === 4) return `jti-${i}-é`;
    if (kind === 5) return String.fromCharCode(65 + (i % 26));
    return `urn:uuid:${i}`;
  };
  for (let i = 0; i < 20_000; i++) {
    const k = id(i);
    const exp = 1000 + (i % 50);
    ids.push(k);
    table.set(k, exp);
    ref.set(k, Math.max(ref.get(k) ?? 0, exp));
  }
  assert.equal(table.size, ref.size);
  for (const k of ids) assert.equal(table.has(k), true, k);
  for (let i = 0; i < 5000; i++) {
    const absent = randomBytes(12).toString('base64url');
    assert.equal(table.has(absent), ref.has(absent));
  }
  // Zero padding never makes a shorter id equal to a longer one.
  table.set('abc', 2000);
  assert.equal(table.has('abc\u0000'), false);
  assert.equal(table.has('ab'), ref.has('ab'));
  // Expiry: everything at or before 1025 goes; the rest stays and is still found after the rebuild.
  table.prune(1025);
  for (const [k, exp] of ref) if (exp <= 1025) ref.delete(k);
  ref.set('abc', 2000);
  assert.equal(table.size, ref.size);
  for (const k of ids) assert.equal(table.has(k), ref.has(k), k);
  // Everything expired: the table shrinks back and still works.
  table.prune(5000);
  assert.equal(table.size, 0);
  table.set('again', 6000);
  assert.equal(table.has('again'), true);
  assert.equal(table.has('agai'), false);
});
