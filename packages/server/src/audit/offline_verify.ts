import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { PublishedKey } from '../keys/key_ring.ts';
import { PostgresStorage } from '../storage/postgres/postgres_storage.ts';
import type { AuditCheckpoint, AuditRecord } from '../storage/ports.ts';
import { SqliteStorage } from '../storage/sqlite/sqlite_storage.ts';
import { verifyAuditChain, type ChainReport, type ChainSource } from './audit_chain_verify.ts';

export interface OfflineVerifyOptions {
  /** A SQLite database file or a PostgreSQL URL, read directly (no IdP running). */
  database?: string;
  /** Or an export (`latchkey audit export`, JSON lines with seq, prevHash and hash). */
  exportFile?: string;
  /** Checkpoints kept outside the database (`LATCHKEY_AUDIT_CHECKPOINT_FILE`, `latchkey audit checkpoints --out`). */
  checkpointsFile?: string;
  /** The IdP's JWKS, saved from `/jwks`; without it the database's own public keys are used. */
  jwksFile?: string;
}

/** Reads checkpoints as JSON lines (or a JSON array, or `{ checkpoints: [...] }`). */
export function readCheckpoints(text: string): AuditCheckpoint[] {
  const t = text.trim();
  if (t === '') return [];
  const parsed: unknown =
    t.startsWith('[') || t.startsWith('{"checkpoints"')
      ? JSON.parse(t)
      : t
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => JSON.parse(l) as unknown);
  const list = Array.isArray(parsed) ? parsed : (parsed as { checkpoints?: unknown }).checkpoints;
  if (!Array.isArray(list)) throw new Error('not a list of checkpoints');
  return list.map((c, i) => {
    const o = c as Record<string, unknown>;
    if (
      !Number.isSafeInteger(o.seq) ||
      typeof o.hash !== 'string' ||
      typeof o.time !== 'string' ||
      typeof o.kid !== 'string' ||
      typeof o.signature !== 'string'
    ) {
      throw new Error(`checkpoint ${i + 1} is malformed`);
    }
    return { seq: o.seq as number, hash: o.hash, time: o.time, kid: o.kid, signature: o.signature };
  });
}

function keysFromJwks(jwks: { keys?: unknown[] }): { publishedKey(kid: string): PublishedKey | undefined } {
  const m = new Map<string, PublishedKey>();
  for (const k of jwks.keys ?? []) {
    const j = k as JsonWebKey & { kid?: string; alg?: string };
    if (typeof j.kid !== 'string' || typeof j.alg !== 'string') continue;
    m.set(j.kid, {
      kid: j.kid,
      alg: j.alg as PublishedKey['alg'],
      publicKey: createPublicKey({ key: j, format: 'jwk' }),
    });
  }
  return { publishedKey: (kid) => m.get(kid) };
}

/** An export read back as a chain source. */
function exportSource(path: string): ChainSource {
  const rows = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as AuditRecord)
    .sort((a, b) => a.seq - b.seq);
  return {
    queryAuditEvents: async (f) => rows.filter((r) => r.seq > (f.after ?? 0)).slice(0, f.limit),
    listAuditCheckpoints: async () => [],
  };
}

/**
 * `latchkey audit verify` without a running IdP: the chain in a database file or PostgreSQL, or in
 * an export, against the checkpoints stored with it and those kept outside it. The keys that
 * verify checkpoint signatures come from a saved JWKS when given — the database's own copy of them
 * is only as trustworthy as the database.
 */
export async function verifyAuditOffline(
  o: OfflineVerifyOptions,
): Promise<ChainReport & { keysFrom: 'jwks' | 'database' | 'none' }> {
  const external = o.checkpointsFile ? readCheckpoints(readFileSync(o.checkpointsFile, 'utf8')) : [];
  const jwksKeys = o.jwksFile
    ? keysFromJwks(JSON.parse(readFileSync(o.jwksFile, 'utf8')) as { keys?: unknown[] })
    : undefined;
  if (o.exportFile) {
    const report = await verifyAuditChain(
      exportSource(o.exportFile),
      jwksKeys ?? { publishedKey: () => undefined },
      external,
    );
    return { ...report, keysFrom: jwksKeys ? 'jwks' : 'none' };
  }
  if (!o.database) throw new Error('give a database (file or PostgreSQL URL) or an export file');
  const isPg = /^postgres(ql)?:\/\//.test(o.database);
  if (!isPg && !existsSync(o.database)) throw new Error(`${o.database}: no such database file`);
  const storage = isPg ? new PostgresStorage(o.database) : new SqliteStorage(o.database);
  try {
    // Prepares the statements; on a database of this version it changes nothing.
    await storage.migrate();
    let keys = jwksKeys;
    if (!keys)
      keys = keysFromJwks({
        keys: (await storage.listKeys()).map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg })),
      });
    const report = await verifyAuditChain(storage, keys, external);
    return { ...report, keysFrom: jwksKeys ? 'jwks' : 'database' };
  } finally {
    await storage.close();
  }
}
