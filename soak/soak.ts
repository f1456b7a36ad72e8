import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PostgresStorage } from '@latchkey/server';
import { type Estate, startEstate } from './estate.ts';
import { Traffic, type WatchedRevocation } from './traffic.ts';

/**
 * The soak of issue 18: IdP replicas on one PostgreSQL behind nginx, a fleet of services'
 * verifiers subscribed to the revocation feed (several replicas per service identity), sustained
 * issuance and verification, key rotations, random revocations, a replica SIGKILLed and restarted
 * and PostgreSQL restarted — then the books are checked: no valid token refused, every revocation
 * enforced at every subscriber it concerns, no audit event lost, memory flat.
 */
export interface SoakOptions {
  durationSeconds: number;
  replicas?: number;
  services?: number;
  replicasPerService?: number;
  /** Tokens per second, overall. */
  issuanceRate?: number;
  keyRotationInterval?: number;
  /** Faults at these seconds into the run; default: {@link defaultFaults}. */
  faults?: Fault[];
  log?: (line: string) => void;
}

export interface Fault {
  at: number;
  kind: 'kill_replica' | 'restart_postgres';
  /** For kill_replica: which replica (default: rotates). */
  replica?: number;
}

/** Seconds a killed replica stays down before it is started again. */
const RESTART_AFTER = 5;
/** The window around a PostgreSQL restart in which revocations get their own bound (ms after it is back). */
const PG_SETTLE_MS = 3000;

/**
 * One replica killed at 30% and PostgreSQL restarted at 60% of a short run; in a long one, a kill
 * every 2 minutes (each replica in turn) and a PostgreSQL restart every 5.
 */
export function defaultFaults(durationSeconds: number, replicas: number): Fault[] {
  if (durationSeconds < 600)
    return [
      { at: Math.round(durationSeconds * 0.3), kind: 'kill_replica', replica: 1 % replicas },
      { at: Math.round(durationSeconds * 0.6), kind: 'restart_postgres' },
    ];
  const faults: Fault[] = [];
  let k = 0;
  for (let t = 60; t < durationSeconds - 60; t += 60) {
    if (t % 300 === 0) faults.push({ at: t, kind: 'restart_postgres' });
    else if (t % 120 === 0) faults.push({ at: t, kind: 'kill_replica', replica: k++ % replicas });
  }
  return faults;
}

export interface FaultRecord extends Fault {
  /** For a kill: until the replica was started again and ready; for PostgreSQL: the restart itself. */
  downMs: number;
  /** Until every replica's /readyz answered 200 again (from the fault). */
  readyAgainMs: number;
  /**
   * What a load balancer's check saw: for PostgreSQL, some replica's /readyz answered 503 while it
   * was down; for a kill, the dead replica refused connections.
   */
  readyzReflected: boolean;
}

export interface LatencySummary {
  count: number;
  subscriberChecks: number;
  p50: number;
  p99: number;
  max: number;
  /** The same outside PostgreSQL restarts. */
  maxOutsidePostgresRestart: number;
  /** Worst case of those overlapping a PostgreSQL restart. */
  maxDuringPostgresRestart: number;
  /** Seconds into the run the slowest one outside PostgreSQL restarts was answered. */
  slowestOutsideAt: number;
  unenforced: number;
}

export interface SoakReport {
  durationSeconds: number;
  replicas: number;
  services: number;
  subscribers: number;
  issuance: Traffic['issuance'] & { perSecond: number };
  verification: Traffic['verification'];
  tokenRevocations: LatencySummary;
  clientRevocations: LatencySummary;
  feed: { expected: number; duplicates: number; missing: number };
  faults: FaultRecord[];
  keyRotations: { total: number; afterLastFault: number };
  keyRotationInterval: number;
  audit: {
    issuedAnswered: number;
    issuedMissing: number;
    revokedAnswered: number;
    revokedMissing: number;
    chainOk: boolean;
    eventsChecked: number;
  };
  memory: { replica: number; restarted: boolean; earlyMiB: number; lateMiB: number; growthMiB: number }[];
  /** Each replica's own metrics at the end: what an operator's alerts would read. */
  replicaMetrics: {
    replica: number;
    notificationsConnected: number;
    signingKeyAgeSeconds: number;
    feedStreams: number;
    feedLagEntries: number;
  }[];
  driverEventLoopP99Ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const median = (a: number[]): number =>
  quantile(
    [...a].sort((x, y) => x - y),
    0.5,
  );

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {});
  const replicas = o.replicas ?? 3;
  const faults = o.faults ?? defaultFaults(o.durationSeconds, replicas);
  const estate = await startEstate({ replicas, keyRotationInterval: o.keyRotationInterval ?? 30 });
  const lag = monitorEventLoopDelay({ resolution: 10 });
  try {
    log(`soak: ${replicas} replicas behind nginx at ${estate.issuer}, PostgreSQL on port ${estate.pg.port}`);
    const traffic = new Traffic({
      issuer: estate.issuer,
      adminToken: estate.adminToken,
      services: o.services ?? 20,
      replicasPerService: o.replicasPerService ?? 3,
      issuanceRate: o.issuanceRate ?? 40,
      revocationEvery: 1000,
      clientRevocationEvery: 7000,
      log,
    });
    await traffic.setUp();
    log(`soak: ${traffic.services.length} services, ${traffic.subscribers} subscribed verifiers`);
    const t0 = Date.now();
    lag.enable();
    traffic.start();
    const rss: { t: number; replica: number; mib: number }[] = [];
    const sampler = setInterval(() => {
      estate.replicas.forEach((r, i) => {
        const mib = r.rssMiB();
        if (mib !== undefined) rss.push({ t: Date.now() - t0, replica: i, mib });
      });
    }, 2000);
    const records: FaultRecord[] = [];
    const pgWindows: [number, number][] = [];
    for (const f of [...faults].sort((a, b) => a.at - b.at)) {
      await sleep(t0 + f.at * 1000 - Date.now());
      log(
        `soak: ${Math.round((Date.now() - t0) / 1000)} s: ${f.kind}${f.replica !== undefined ? ` ${f.replica}` : ''}`,
      );
      records.push(await inject(estate, f, pgWindows, log));
    }
    await sleep(t0 + o.durationSeconds * 1000 - Date.now());
    log('soak: stopping the load, settling the watches');
    // Each replica's own metrics while the subscribers are still connected and the load has stopped.
    let replicaMetrics: SoakReport['replicaMetrics'] = [];
    await traffic.stop(async () => {
      await new Promise((r) => setTimeout(r, 500));
      replicaMetrics = await Promise.all(
        estate.replicas.map(async (r, replica) => {
          const m = await r.metrics(estate.adminToken);
          return {
            replica,
            notificationsConnected: m.get('latchkey_storage_notifications_connected') ?? -1,
            signingKeyAgeSeconds: m.get('latchkey_signing_key_age_seconds') ?? -1,
            feedStreams: m.get('latchkey_feed_streams') ?? -1,
            feedLagEntries: m.get('latchkey_feed_lag_entries') ?? -1,
          };
        }),
      );
    });
    clearInterval(sampler);
    lag.disable();

    const audit = await checkAudit(estate, traffic);
    const rotations = await keyRotations(estate);
    const lastFaultEnd = Math.max(0, ...records.map((r) => t0 + r.at * 1000 + r.readyAgainMs));
    const restarted = new Set(records.flatMap((r) => (r.kind === 'kill_replica' ? [r.replica!] : [])));
    const third = (o.durationSeconds * 1000) / 3;
    const memory = estate.replicas.map((_r, i) => {
      // Compared over the run's second and last thirds (a restarted replica: since its restart).
      const mine = rss.filter((s) => s.replica === i);
      const early = mine.filter((s) => s.t >= third && s.t < 2 * third).map((s) => s.mib);
      const late = mine.filter((s) => s.t >= 2 * third).map((s) => s.mib);
      const e = median(early);
      const l = median(late);
      return { replica: i, restarted: restarted.has(i), earlyMiB: e, lateMiB: l, growthMiB: l - e };
    });
    const inPg = (w: WatchedRevocation) => {
      const end = w.answeredAt + Math.max(0, ...w.latencies);
      return pgWindows.some(([a, b]) => w.answeredAt <= b + PG_SETTLE_MS && end >= a);
    };
    const summarize = (ws: WatchedRevocation[]): LatencySummary => {
      const all = ws.flatMap((w) => w.latencies).sort((a, b) => a - b);
      const worst = (xs: WatchedRevocation[]) => Math.max(0, ...xs.flatMap((w) => w.latencies));
      const outside = ws.filter((w) => !inPg(w));
      const slowest = outside.reduce<WatchedRevocation | undefined>(
        (m, w) => (m === undefined || worst([w]) > worst([m]) ? w : m),
        undefined,
      );
      return {
        count: ws.length,
        subscriberChecks: all.length,
        p50: quantile(all, 0.5),
        p99: quantile(all, 0.99),
        max: all.at(-1) ?? 0,
        maxOutsidePostgresRestart: worst(outside),
        maxDuringPostgresRestart: worst(ws.filter(inPg)),
        slowestOutsideAt: slowest ? Math.round((slowest.answeredAt - t0) / 100) / 10 : 0,
        unenforced: ws.reduce((n, w) => n + w.unenforced, 0),
      };
    };
    return {
      durationSeconds: o.durationSeconds,
      replicas,
      services: traffic.services.length,
      subscribers: traffic.subscribers,
      issuance: { ...traffic.issuance, perSecond: Math.round(traffic.issuance.ok / o.durationSeconds) },
      verification: traffic.verification,
      tokenRevocations: summarize(traffic.revocations.filter((w) => w.kind === 'token')),
      clientRevocations: summarize(traffic.revocations.filter((w) => w.kind === 'client')),
      feed: traffic.feedAccounting(),
      faults: records,
      keyRotations: { total: rotations.length, afterLastFault: rotations.filter((t) => t > lastFaultEnd).length },
      keyRotationInterval: o.keyRotationInterval ?? 30,
      audit,
      memory,
      replicaMetrics,
      driverEventLoopP99Ms: Math.round(lag.percentile(99) / 1e6),
    };
  } finally {
    await estate.close();
  }
}

/** Applies one fault and waits until every replica is ready again. */
async function inject(
  estate: Estate,
  f: Fault,
  pgWindows: [number, number][],
  log: (line: string) => void,
): Promise<FaultRecord> {
  const start = Date.now();
  let reflected = false;
  // Probes every replica's /readyz directly, as a load balancer's health check would, while the fault lasts.
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const states = await Promise.all(estate.replicas.map((r) => r.readiness()));
      if (f.kind === 'restart_postgres' && states.some((s) => s.status === 503)) reflected = true;
      await sleep(100);
    }
  })();
  let downMs: number;
  if (f.kind === 'kill_replica') {
    const r = estate.replicas[f.replica ?? 0]!;
    await r.kill();
    // A dead replica: nothing answers its /readyz (the balancer's passive check sees refused connections).
    reflected = (await r.readiness()).status === 0;
    await sleep(RESTART_AFTER * 1000);
    await r.start();
    downMs = Date.now() - start;
  } else {
    downMs = await estate.pg.restart();
    pgWindows.push([start, Date.now()]);
  }
  let ready = false;
  let states: { status: number; body: unknown }[] = [];
  while (!ready && Date.now() - start < 60_000) {
    states = await Promise.all(estate.replicas.map((r) => r.readiness()));
    ready = states.every((s) => s.status === 200);
    if (!ready) await sleep(100);
  }
  if (!ready)
    estate.replicas.forEach((r, i) => {
      if (states[i]?.status !== 200)
        log(`soak: replica ${i} not ready: ${JSON.stringify(states[i])}\n${r.served?.out().slice(-3000)}`);
    });
  probing = false;
  await prober;
  return { ...f, downMs, readyAgainMs: ready ? Date.now() - start : -1, readyzReflected: reflected };
}

/** Every answered issuance and revocation has its audit event; the chain verifies. */
async function checkAudit(estate: Estate, traffic: Traffic): Promise<SoakReport['audit']> {
  const store = new PostgresStorage(estate.databaseUrl);
  try {
    const jtis = async (type: string): Promise<Set<string>> => {
      const out = new Set<string>();
      let after = 0;
      for (;;) {
        const page = await store.queryAuditEvents({ type, outcome: 'success', after, limit: 5000 });
        for (const e of page) if (typeof e.detail?.jti === 'string') out.add(e.detail.jti);
        if (page.length < 5000) return out;
        after = page.at(-1)!.seq;
      }
    };
    const issued = await jtis('token.issued');
    const revoked = await jtis('token.revoked');
    const res = await fetch(`${estate.issuer}/admin/audit/verify`, {
      headers: { authorization: `Bearer ${estate.adminToken}` },
    });
    const chain = (await res.json()) as { ok: boolean; checked: number };
    return {
      issuedAnswered: traffic.issued.size,
      issuedMissing: [...traffic.issued].filter((j) => !issued.has(j)).length,
      revokedAnswered: traffic.revoked.size,
      revokedMissing: [...traffic.revoked].filter((j) => !revoked.has(j)).length,
      chainOk: chain.ok === true,
      eventsChecked: chain.checked,
    };
  } finally {
    await store.close();
  }
}

/** When each key was activated (ms since epoch), from the audit trail. */
async function keyRotations(estate: Estate): Promise<number[]> {
  const store = new PostgresStorage(estate.databaseUrl);
  try {
    const rows = await store.queryAuditEvents({ type: 'key.activated', limit: 10_000 });
    return rows.map((e) => Date.parse(e.time));
  } finally {
    await store.close();
  }
}

/** What failed, by the issue's pass criteria; empty when the soak passed. */
export function soakProblems(r: SoakReport, o: { maxGrowthMiB?: number } = {}): string[] {
  const p: string[] = [];
  if (r.verification.failures > 0)
    p.push(`${r.verification.failures} valid tokens failed verification: ${r.verification.samples.join('; ')}`);
  if (r.issuance.gaveUp > 0) p.push(`${r.issuance.gaveUp} token requests never succeeded (after ~15 s of retries)`);
  for (const [name, s] of [
    ['token', r.tokenRevocations],
    ['client', r.clientRevocations],
  ] as const) {
    if (s.count === 0) p.push(`no ${name} revocation was made`);
    if (s.unenforced > 0) p.push(`${s.unenforced} ${name} revocations never reached a subscriber`);
    if (s.maxOutsidePostgresRestart > 1000)
      p.push(`a ${name} revocation took ${s.maxOutsidePostgresRestart} ms to reach a subscriber (bound 1000 ms)`);
  }
  if (r.feed.missing > 0 || r.feed.duplicates > 0)
    p.push(`feed: ${r.feed.missing} client revocations missing, ${r.feed.duplicates} applied twice`);
  if (r.audit.issuedMissing > 0) p.push(`${r.audit.issuedMissing} answered token requests have no audit event`);
  if (r.audit.revokedMissing > 0) p.push(`${r.audit.revokedMissing} answered revocations have no audit event`);
  if (!r.audit.chainOk) p.push('the audit chain does not verify');
  for (const f of r.faults) {
    if (f.readyAgainMs < 0) p.push(`after ${f.kind} at ${f.at} s the replicas were not ready again within 60 s`);
    if (!f.readyzReflected) p.push(`during ${f.kind} at ${f.at} s no replica's /readyz said it was not ready`);
  }
  if (r.keyRotations.afterLastFault === 0) p.push('no key rotation after the last fault (a stuck lease?)');
  for (const m of r.replicaMetrics) {
    if (m.notificationsConnected !== 1) p.push(`replica ${m.replica}: its notification connection is not back`);
    if (m.feedLagEntries !== 0) p.push(`replica ${m.replica}: its streams are ${m.feedLagEntries} feed entries behind`);
    if (m.signingKeyAgeSeconds < 0 || m.signingKeyAgeSeconds > r.keyRotationInterval * 2)
      p.push(`replica ${m.replica}: the current signing key is ${m.signingKeyAgeSeconds} s old (rotation stuck?)`);
  }
  const limit = o.maxGrowthMiB ?? 48;
  for (const m of r.memory)
    if (!m.restarted && m.growthMiB > limit)
      p.push(`replica ${m.replica} grew ${m.growthMiB.toFixed(1)} MiB between the run's second and last thirds`);
  return p;
}
