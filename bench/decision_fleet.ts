// Decision audit at fleet volume (issue 18): a fleet of services' SDK audit queues (the real
// createAuditQueue, over loopback HTTPS) recording permission decisions at a steady rate each,
// against one IdP (its own process, SQLite or PostgreSQL). What the IdP ingests, at what CPU, and
// whether the fleet's decisions are all accounted for without a backlog.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ReportedEvent } from '@latchkey/protocol';
import { type AuditQueue, createAuditQueue } from '@latchkey/sdk/audit';
import { Agent, fetch as undiciFetch } from 'undici';
import { cpuSecondsOf, type Target } from './cpu.ts';

export interface FleetScenario {
  name: string;
  services: number;
  /** Decisions per second per service. */
  rate: number;
  /** The queue's allowRate (Infinity: every allow its own event). */
  allowRate: number;
}

export interface FleetResult {
  decisionsPerSecond: number;
  /** Events the IdP accepted per second: individual decisions and counted rows. */
  eventsPerSecond: number;
  individualPerSecond: number;
  countedRowsPerSecond: number;
  /** Decisions counted because the queue was full (the IdP did not keep up). */
  backlogCounted: number;
  /** Events still queued when the window closed (a growing backlog). */
  pendingAtEnd: number;
  /** IdP CPU cores busy during the window. */
  idpCores: number;
  /** Time to deliver everything after the fleet stopped (ms). */
  drainMs: number;
  /** Decisions made = decisions accounted for (individual + counted) at the IdP's answers. */
  accounted: boolean;
}

const DENY_SHARE = 0.02;
const SENSITIVE_SHARE = 0.01;

function decision(i: number): ReportedEvent {
  const r = (i * 2654435761) % 1000;
  const deny = r < DENY_SHARE * 1000;
  const sensitive = !deny && r < (DENY_SHARE + SENSITIVE_SHARE) * 1000;
  const action = deny ? 'delete' : sensitive ? 'export' : 'read';
  return {
    type: 'authz.decision',
    outcome: deny ? 'failure' : 'success',
    actor: `User::"user-${i % 50}"`,
    target: `Orders::Order::"${i}"`,
    reason: deny ? 'no permit' : `${action}-policy`,
    detail: {
      action: `Orders::Action::"${action}"`,
      policy_version: 3,
      policies: deny ? [] : [`${action}-policy`],
      ...(sensitive ? { sensitive: true } : {}),
    },
  };
}

export async function benchDecisionFleet(options: {
  seconds: number;
  databaseUrl?: string;
  scenarios: FleetScenario[];
}): Promise<Record<string, FleetResult>> {
  const proc = fork(
    fileURLToPath(new URL('./idp_child.ts', import.meta.url)),
    ['ingest', ...(options.databaseUrl ? [options.databaseUrl] : [])],
    { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  const target = await new Promise<Target>((resolve) =>
    proc.once('message', (m: { target: Target }) => resolve(m.target)),
  );
  const cpu = () => cpuSecondsOf(proc);
  const [clientId, clientSecret] = Buffer.from(target.authorization.slice(6), 'base64').toString().split(':') as [
    string,
    string,
  ];
  const dispatcher = new Agent({ connect: { ca: target.ca! }, connections: 64 });
  const out: Record<string, FleetResult> = {};
  try {
    for (const s of options.scenarios) {
      // Counts what the IdP accepted, from the batches it answered 202 to.
      const accepted = { individual: 0, rows: 0, counted: 0, backlog: 0 };
      const counting = (async (input: string, init: RequestInit) => {
        const res = await undiciFetch(input, { ...(init as object), dispatcher } as never);
        if (res.status === 202 && typeof init.body === 'string') {
          for (const e of (JSON.parse(init.body) as { events: ReportedEvent[] }).events) {
            if (e.type === 'authz.decisions') {
              accepted.rows++;
              accepted.counted += e.detail!.count as number;
              if (e.detail!.why === 'backlog') accepted.backlog += e.detail!.count as number;
            } else accepted.individual++;
          }
        }
        return res;
      }) as unknown as typeof fetch;
      const queues: AuditQueue[] = Array.from({ length: s.services }, () =>
        createAuditQueue({
          issuer: target.issuer!,
          credentials: { clientId, clientSecret },
          fetch: counting,
          allowRate: s.allowRate,
        }),
      );
      let made = 0;
      const perTick = s.rate / 100;
      const carry = new Array<number>(s.services).fill(0);
      const tick = setInterval(() => {
        for (let q = 0; q < queues.length; q++) {
          carry[q]! += perTick;
          while (carry[q]! >= 1) {
            queues[q]!.record(decision(made++));
            carry[q]!--;
          }
        }
      }, 10);
      // Warm up a second, then measure.
      await new Promise((r) => setTimeout(r, 1000));
      const c0 = await cpu();
      const before = { ...accepted, made, at: performance.now() };
      await new Promise((r) => setTimeout(r, options.seconds * 1000));
      const c1 = await cpu();
      const wall = (performance.now() - before.at) / 1000;
      const window = { ...accepted, made };
      clearInterval(tick);
      const pendingAtEnd = queues.reduce((n, q) => n + q.pending, 0);
      const d0 = performance.now();
      await Promise.all(queues.map((q) => q.close()));
      const drainMs = performance.now() - d0;
      const dropped = queues.reduce((n, q) => n + q.dropped, 0);
      out[s.name] = {
        decisionsPerSecond: (window.made - before.made) / wall,
        eventsPerSecond: (window.individual + window.rows - before.individual - before.rows) / wall,
        individualPerSecond: (window.individual - before.individual) / wall,
        countedRowsPerSecond: (window.rows - before.rows) / wall,
        backlogCounted: accepted.backlog,
        pendingAtEnd,
        idpCores: (c1 - c0) / wall,
        drainMs,
        accounted: dropped === 0 && accepted.individual + accepted.counted === made,
      };
    }
  } finally {
    proc.send({ kind: 'stop' });
    await new Promise((r) => proc.once('exit', r));
    await dispatcher.close();
  }
  return out;
}
