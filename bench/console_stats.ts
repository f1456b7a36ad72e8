// The console's reads at trail scale: GET /admin/stats over a trail of BENCH_AUDIT_ROWS events
// (default 1,000,000, a day's worth) beside its peer — the same counts by a plain time-range scan
// in the same database —, and how soon the audit stream delivers an event.
import Database from 'better-sqlite3';
import pg from 'pg';
import type { AuditEvent } from '@latchkey/protocol';
import { basicAuth, startTestIdp, type TestIdp } from '@latchkey/testkit';

const CLIENTS = 20;
const DAY = 86_400_000;

/** A day of events ending now: 90% tokens issued across 20 clients, 5% failed authentications, 3% denials. */
async function fill(t: TestIdp, rows: number): Promise<void> {
  const start = Date.now() - DAY;
  const batch = 2048;
  for (let done = 0; done < rows; done += batch) {
    const events: AuditEvent[] = [];
    for (let i = done; i < Math.min(rows, done + batch); i++) {
      const time = new Date(start + Math.floor((i / rows) * DAY)).toISOString();
      const client_id = `svc-${i % CLIENTS}`;
      const r = i % 100;
      events.push(
        r < 90
          ? { time, type: 'token.issued', outcome: 'success', actor: client_id, client_id }
          : r < 95
            ? {
                time,
                type: 'client.auth_failed',
                outcome: 'failure',
                actor: 'anonymous',
                client_id,
                reason: 'bad_secret',
              }
            : r < 98
              ? {
                  time,
                  type: 'authz.decision',
                  outcome: 'failure',
                  actor: 'Service::"x"',
                  client_id,
                  detail: { action: `Orders::Action::"${i % 3 === 0 ? 'cancel' : 'read'}"` },
                }
              : { time, type: 'token.introspected', outcome: 'success', actor: client_id, client_id },
      );
    }
    await t.idp.storage.appendAuditEvents(events);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

/** The peer: the dashboard's counts by a time-range scan, GROUP BY as the endpoint does. */
function peerQuery(chars: number): string {
  return `SELECT substr(time, 1, ${chars}) AS bucket, type, outcome, client_id, COUNT(*) AS n FROM audit_events
    WHERE time >= $1 AND time <= $2 AND type IN ('token.issued', 'client.auth_failed', 'user.login_failed', 'admin.auth_failed')
    GROUP BY substr(time, 1, ${chars}), type, outcome, client_id`;
}

export interface ConsoleStatsResult {
  backend: string;
  rows: number;
  fillSeconds: number;
  ranges: { range: string; step: string; statsMs: number; peerMs: number; buckets: number; counted: number }[];
  streamMs: { p50: number; p99: number; samples: number };
}

export async function benchConsoleStats(options: { rows: number; databaseUrl?: string }): Promise<ConsoleStatsResult> {
  const t = await startTestIdp(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {});
  try {
    const t0 = performance.now();
    await fill(t, options.rows);
    const fillSeconds = (performance.now() - t0) / 1000;
    const sqlite = options.databaseUrl ? undefined : new Database(`${t.dataDir}/latchkey.db`, { readonly: true });
    const pgClient = options.databaseUrl ? new pg.Client({ connectionString: options.databaseUrl }) : undefined;
    await pgClient?.connect();
    const peer = async (chars: number, from: string, to: string): Promise<number> => {
      const started = performance.now();
      if (sqlite) sqlite.prepare(peerQuery(chars).replace('$1', '?').replace('$2', '?')).all(from, to);
      else await pgClient!.query(peerQuery(chars), [from, to]);
      return performance.now() - started;
    };
    const ranges: ConsoleStatsResult['ranges'] = [];
    for (const [range, ms, step, chars] of [
      ['15 min', 15 * 60_000, '10s', 18],
      ['1 h', 3_600_000, '1m', 16],
      ['24 h', DAY, '10m', 15],
    ] as const) {
      const to = new Date().toISOString();
      const from = new Date(Date.now() - ms).toISOString();
      const stats: number[] = [];
      const peers: number[] = [];
      let buckets = 0;
      let counted = 0;
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const res = await t.admin(`/admin/stats?from=${from}&to=${to}&step=${step}`, undefined, 'GET');
        const body = (await res.json()) as { buckets: string[]; tokens_issued: { counts: number[] }[] };
        stats.push(performance.now() - started);
        if (res.status !== 200) throw new Error(`stats: ${res.status} ${JSON.stringify(body)}`);
        buckets = body.buckets.length;
        counted = body.tokens_issued.reduce((a, s) => a + s.counts.reduce((x, y) => x + y, 0), 0);
        peers.push(await peer(chars, from, to));
      }
      ranges.push({ range, step, statsMs: median(stats), peerMs: median(peers), buckets, counted });
    }
    sqlite?.close();
    await pgClient?.end();

    // The live tail: from the IdP's answer to a token request to the event on an open stream.
    const secret = (
      await t.register({
        client_id: 'tail',
        grant_types: ['client_credentials'],
        audiences: ['https://a.bench'],
        default_audience: 'https://a.bench',
      })
    ).client_secret as string;
    const stop = new AbortController();
    const res = await t.fetch(`${t.issuer}/admin/audit/stream?type=token.issued&client_id=tail`, {
      headers: { authorization: `Bearer ${t.adminToken}` },
      signal: stop.signal,
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    await reader.read();
    const samples: number[] = [];
    for (let i = 0; i < 50; i++) {
      await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth('tail', secret) });
      const answered = performance.now();
      let text = '';
      while (!text.includes('event: audit')) text += (await reader.read()).value ?? '';
      samples.push(performance.now() - answered);
    }
    stop.abort();
    return {
      backend: options.databaseUrl ? 'PostgreSQL' : 'SQLite',
      rows: options.rows,
      fillSeconds,
      ranges,
      streamMs: { p50: median(samples), p99: p99(samples), samples: samples.length },
    };
  } finally {
    await t.close();
  }
}
