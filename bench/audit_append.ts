// Peer for the ingestion benchmark: the storage adapter's own batched append, in-process, no HTTP.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresStorage, SqliteStorage, type Storage } from '@latchkey/server';
import type { AuditEvent } from '@latchkey/protocol';

const batch = (): AuditEvent[] =>
  Array.from({ length: 200 }, (_, i) => ({
    time: new Date().toISOString(),
    type: 'authz.decision',
    outcome: i % 10 === 0 ? 'failure' : 'success',
    actor: `Service::"checkout-${i % 7}"`,
    client_id: 'bench',
    reason: 'policy0',
    request_id: `req-${i}`,
    detail: { action: 'Action::"read"', service: 'bench', target: `Order::"${i}"` },
  }));

async function rate(storage: Storage, ms: number): Promise<number> {
  const end = performance.now() + ms;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) {
    await storage.appendAuditEvents(batch());
    n += 200;
  }
  return n / ((performance.now() - t0) / 1000);
}

/** Events per second that `appendAuditEvents` sustains with 200-event batches, one writer. */
export async function benchStorageAppend(options: {
  databaseUrl: string | undefined;
  ms: number;
}): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-append-'));
  const sqlite = new SqliteStorage(join(dir, 'latchkey.db'));
  try {
    await sqlite.migrate();
    out['SqliteStorage.appendAuditEvents, 200 per batch'] = await rate(sqlite, options.ms);
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (options.databaseUrl) {
    const pg = new PostgresStorage(options.databaseUrl);
    try {
      await pg.migrate();
      out['PostgresStorage.appendAuditEvents, 200 per batch'] = await rate(pg, options.ms);
    } finally {
      await pg.close();
    }
  }
  return out;
}
