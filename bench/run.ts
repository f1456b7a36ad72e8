// npm run bench — each hot path beside a peer in the same run; medians of interleaved rounds.
// BENCH_DURATION (seconds per measurement, default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 16),
// BENCH_ONLY (comma-separated: issuance, exchange, ingestion, propagation, verification, authorization, workload, sidecar, login, statuslist, revocations, fleet, replicas, console; default all).
import { cpus } from 'node:os';
import { benchRevocationPropagation } from './revocation_propagation.ts';
import {
  benchAuditIngestion,
  benchCertificateIssuance,
  benchTokenExchange,
  benchTokenIssuance,
} from './token_issuance.ts';
import { benchHandshakes } from './mtls_handshake.ts';
import { benchStorageAppend } from './audit_append.ts';
import { startPostgresIfConfigured } from '@latchkey/testkit';
import { benchVerification } from './verification.ts';
import { benchAuthorization } from './authorization.ts';
import { benchSidecar } from './sidecar.ts';
import { benchLogin } from './login.ts';
import { benchStatusListBuild } from './status_list.ts';
import { benchRevocationMemory } from './revocation_memory.ts';
import { benchDecisionFleet } from './decision_fleet.ts';
import { benchReplicaScaling } from './replica_scaling.ts';
import { benchVerifyAtScale } from './verify_at_scale.ts';
import { benchConsoleStats } from './console_stats.ts';

const duration = Number(process.env.BENCH_DURATION ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);
const only = process.env.BENCH_ONLY?.split(',').map((x) => x.trim());
const runs = (section: string): boolean => !only || only.includes(section);
let failed = false;

console.log(
  `# Latchkey benchmarks — ${new Date().toISOString()} — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}`,
);
console.log(`# ${rounds} interleaved rounds of ${duration}s, ${connections} keep-alive HTTPS connections, medians\n`);

if (runs('issuance')) {
  console.log('## Token issuance over loopback HTTPS');
  const results = await benchTokenIssuance({ duration, rounds, connections });
  const ceiling = Object.values(results)[0]!;
  console.log(
    '| subject | tokens/s | p50 ms | p99 ms | server cores | tokens per CPU-second | vs ceiling (per CPU-s) | errors |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `| ${name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.cores.toFixed(2)} | ${r.perCore.toFixed(0)} | ${((r.perCore / ceiling.perCore) * 100).toFixed(0)}% | ${r.non2xx} |`,
    );
  }
  const idp = Object.entries(results).find(([n]) => n.startsWith('Latchkey'))![1];
  const auditOff = Object.entries(results).find(([n]) => n.includes('audit off'))![1];
  console.log(`\nLatchkey access token size: ${idp.tokenBytes} bytes (ES256, one audience, one scope)`);
  console.log(
    `Audit cost on the token path: ${((1 - idp.perCore / auditOff.perCore) * 100).toFixed(1)}% of tokens per CPU-second, ${((1 - idp.rps / auditOff.rps) * 100).toFixed(1)}% of tokens/s (target: under 10%)`,
  );
  const statusOff = Object.entries(results).find(([n]) => n.includes('status list off'))![1];
  console.log(
    `Token Status List cost on the token path (index, claim, entry row): ${((1 - idp.perCore / statusOff.perCore) * 100).toFixed(1)}% of tokens per CPU-second, ${((1 - idp.rps / statusOff.rps) * 100).toFixed(1)}% of tokens/s; token ${idp.tokenBytes} vs ${statusOff.tokenBytes} bytes`,
  );
  if (idp.non2xx > 0) failed = true;
}

if (runs('exchange')) {
  console.log('\n## Token exchange and Transaction Tokens over loopback HTTPS (issue 16)');
  const results = await benchTokenExchange({ duration, rounds, connections });
  const reference = Object.values(results)[0]!;
  console.log(
    '| subject | tokens/s | p50 ms | p99 ms | server cores | tokens per CPU-second | vs client_credentials (tokens/s) | vs client_credentials (per CPU-s) | errors |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `| ${name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.cores.toFixed(2)} | ${r.perCore.toFixed(0)} | ${((r.rps / reference.rps) * 100).toFixed(0)}% | ${((r.perCore / reference.perCore) * 100).toFixed(0)}% | ${r.non2xx} |`,
    );
    if (r.non2xx > 0) failed = true;
  }
  console.log('Target: exchanges and Transaction Tokens at ≥ 60% of client_credentials');
}

if (runs('ingestion')) {
  console.log('\n## Audit ingestion over loopback HTTPS (issue 5)');
  // A fresh database on the test server for each (LATCHKEY_TEST_DATABASE_URL; `. .ci/postgres.sh` sets it).
  const databaseUrl = await startPostgresIfConfigured();
  const ingest = await benchAuditIngestion({ duration, rounds, connections: 8, databaseUrl });
  const peer = await benchStorageAppend({ databaseUrl: await startPostgresIfConfigured(), ms: duration * 1000 });
  console.log('| subject | events/s | batches/s | p50 ms | p99 ms | server cores | errors |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of Object.entries(ingest))
    console.log(
      `| ${name} | ${(r.rps * 200).toFixed(0)} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.cores.toFixed(2)} | ${r.non2xx} |`,
    );
  for (const [name, eps] of Object.entries(peer))
    console.log(`| peer: ${name} | ${eps.toFixed(0)} | ${(eps / 200).toFixed(0)} | | | 1 (in-process) | 0 |`);
  if (!databaseUrl) console.log('\n(PostgreSQL rows need LATCHKEY_TEST_DATABASE_URL; `. .ci/postgres.sh` sets it.)');
  if (Object.values(ingest).some((r) => r.non2xx > 0)) failed = true;
}

if (runs('propagation')) {
  console.log('\n## Revocation propagation over loopback HTTPS (SSE)');
  const subscribers = Number(process.env.BENCH_SUBSCRIBERS ?? 100);
  const revocations = Number(process.env.BENCH_REVOCATIONS ?? 50);
  const prop = await benchRevocationPropagation({ subscribers, revocations });
  console.log(
    `${revocations} revocations × ${subscribers} concurrent stream subscribers: ${prop.samples} arrivals, ${prop.missing} missing`,
  );
  console.log('| from sending /revoke to arrival | first ms | p50 ms | p99 ms | max ms |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  console.log(
    `| Latchkey /feeds/stream | ${prop.min.toFixed(2)} | ${prop.p50.toFixed(2)} | ${prop.p99.toFixed(2)} | ${prop.max.toFixed(2)} |`,
  );
  console.log(
    `The IdP's part (its latchkey.feed.deliver spans): every stream written ${prop.handoffP50.toFixed(1)} ms after /revoke was sent (median), at worst ${prop.handoffMax.toFixed(1)} ms`,
  );
  console.log(
    `IdP memory per open stream: ${(prop.rssPerStream / 1024).toFixed(1)} KiB resident, ${(prop.heapPerStream / 1024).toFixed(1)} KiB of heap`,
  );
  if (prop.missing > 0) failed = true;
}

if (runs('verification')) {
  console.log('\n## Token verification, one thread, ES256 (issue 4)');
  const ver = await benchVerification({ ms: Number(process.env.BENCH_VERIFY_MS ?? 2000), rounds, tokens: 2000 });
  const rateOf = (prefix: string) => [...ver.rates].find(([k]) => k.startsWith(prefix))![1];
  console.log('| subject | verifications/s | vs (a) | vs (b) |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, r] of ver.rates)
    console.log(
      `| ${name} | ${r.toFixed(0)} | ${((r / rateOf('(a)')) * 100).toFixed(0)}% | ${(r / rateOf('(b)')).toFixed(1)}x |`,
    );
  console.log(
    `\nRevocation set with ${ver.entries} token entries: ${(ver.revocationSetBytes / 1024 / 1024).toFixed(1)} MB of heap${ver.measuredWithGc ? '' : ' (without --expose-gc: approximate)'}`,
  );
}

if (runs('authorization')) {
  console.log('\n## Authorization decisions, one thread, 100 policies, 10,000 entities (issue 6)');
  const az = await benchAuthorization({ ms: Number(process.env.BENCH_AUTHZ_MS ?? 3000) });
  const { checkedAgainstA, ...rows } = az;
  console.log('| subject | decisions/s | p50 µs | p99 µs | calls | decisions different from (a) |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of Object.entries(rows))
    console.log(
      `| ${name} | ${r.perSecond.toFixed(0)} | ${r.p50us.toFixed(0)} | ${r.p99us.toFixed(0)} | ${r.calls} | ${r.mismatches} |`,
    );
  console.log(
    `\n(The first ${checkedAgainstA!.calls} requests are compared with (a)'s answers; targets for (c) cold: 20,000/s and p99 under 100 µs.)`,
  );
  if (Object.values(rows).some((r) => r.mismatches > 0)) failed = true;
}

if (runs('workload')) {
  console.log('\n## Workload certificates and mutual TLS (issue 7)');
  const certs = await benchCertificateIssuance({ duration, rounds, connections: 8 });
  const peer = Object.values(certs)[0]!;
  console.log(
    '| subject | certificates/s | p50 ms | p99 ms | server cores | per CPU-second | vs peer (per CPU-s) | errors |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of Object.entries(certs))
    console.log(
      `| ${name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.cores.toFixed(2)} | ${r.perCore.toFixed(0)} | ${((r.perCore / peer.perCore) * 100).toFixed(0)}% | ${r.non2xx} |`,
    );
  if (Object.values(certs).some((r) => r.non2xx > 0)) failed = true;
  const hs = await benchHandshakes({ ms: Number(process.env.BENCH_HANDSHAKE_MS ?? 3000), rounds });
  const base = Object.values(hs)[0]!.perSecond;
  console.log(
    '\n| full handshakes, client and server in one process, 4 at a time | handshakes/s | vs server-only | failures |',
  );
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, r] of Object.entries(hs))
    console.log(
      `| ${name} | ${r.perSecond.toFixed(0)} | ${((r.perSecond / base) * 100).toFixed(0)}% | ${r.failures} |`,
    );
  if (Object.values(hs).some((r) => r.failures > 0)) failed = true;
}

if (runs('sidecar')) {
  console.log('\n## The sidecar: reverse proxy, forward auth behind nginx, Envoy ext_authz over gRPC (issue 14)');
  const sc = await benchSidecar({ duration, rounds, connections });
  const direct = Object.values(sc.http)[0]!;
  const nginxDirect = sc.http['nginx → upstream']!;
  const nodeProxy = sc.http['ceiling: plain node:http proxy (no checks) → upstream']!;
  console.log(
    '| path | requests/s | p50 ms | p99 ms | cores on the path | requests per CPU-second | vs upstream straight (per CPU-s) | vs node:http proxy | sequential p50 µs | p99 µs | added p50 µs | added p99 µs | errors |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of Object.entries(sc.http)) {
    const base = name.startsWith('nginx') ? nginxDirect : direct;
    console.log(
      `| ${name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.cores.toFixed(2)} | ${r.perCore.toFixed(0)} | ${((r.perCore / direct.perCore) * 100).toFixed(0)}% | ${((r.perCore / nodeProxy.perCore) * 100).toFixed(0)}% | ${r.probeP50.toFixed(0)} | ${r.probeP99.toFixed(0)} | ${(r.probeP50 - base.probeP50).toFixed(0)} | ${(r.probeP99 - base.probeP99).toFixed(0)} | ${r.errors} |`,
    );
  }
  const g = sc.grpc;
  console.log(
    `\ngRPC Check (${connections} in flight): ${g.rps.toFixed(0)} calls/s, ${g.cores.toFixed(2)} sidecar cores, ${g.perCore.toFixed(0)} per CPU-second, p50 ${g.p50.toFixed(2)} ms, p99 ${g.p99.toFixed(2)} ms; one at a time: p50 ${g.probeP50.toFixed(0)} µs, p99 ${g.probeP99.toFixed(0)} µs`,
  );
  const proxy = sc.http['sidecar reverse proxy → upstream']!;
  console.log(
    `Reverse proxy vs straight, per CPU-second of the path: ${((proxy.perCore / direct.perCore) * 100).toFixed(0)}% (target ≥ 50%; a plain node:http proxy: ${((nodeProxy.perCore / direct.perCore) * 100).toFixed(0)}%, the sidecar ${((proxy.perCore / nodeProxy.perCore) * 100).toFixed(0)}% of it); added latency (sequential, seen token): proxy p50 ${(proxy.probeP50 - direct.probeP50).toFixed(0)} µs, forward auth p50 ${(sc.http['nginx + sidecar forward auth → upstream']!.probeP50 - nginxDirect.probeP50).toFixed(0)} µs (target p50 < 1 ms, p99 < 3 ms)`,
  );
  if (Object.values(sc.http).some((r) => r.errors > 0)) failed = true;
}

if (runs('revocations')) {
  console.log('\n## The SDK with 100k and 1M revocation entries (issue 18)');
  const r = benchRevocationMemory();
  console.log('| entries | heap MiB | bytes per entry | revocation checks/s | vs no entries |');
  console.log('| ---: | ---: | ---: | ---: | ---: |');
  console.log(`| 0 | | | ${r.baseline.toFixed(0)} | 100% |`);
  for (const x of r.rows)
    console.log(
      `| ${x.entries} | ${x.heapMiB.toFixed(1)} | ${x.bytesPerEntry.toFixed(0)} | ${x.checksPerSecond.toFixed(0)} | ${(x.vsEmpty * 100).toFixed(0)}% |`,
    );
  console.log('Target: 1,000,000 entries in under 250 MB, verification speed unchanged.');
  console.log("\nThe whole verify() with the entries delivered by the real IdP's feed (one token, not revoked):");
  console.log(
    '| entries | catch-up at start s | verifier heap MiB | verify()/s, cached token | vs 0 | verify()/s, every token new | vs 0 |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const v = await benchVerifyAtScale();
  for (const x of v)
    console.log(
      `| ${x.entries} | ${x.catchUpSeconds.toFixed(1)} | ${x.heapMiB.toFixed(1)} | ${x.cached.toFixed(0)} | ${((x.cached / v[0]!.cached) * 100).toFixed(0)}% | ${x.fresh.toFixed(0)} | ${((x.fresh / v[0]!.fresh) * 100).toFixed(0)}% |`,
    );
}

if (runs('console')) {
  const rows = Number(process.env.BENCH_AUDIT_ROWS ?? 1_000_000);
  console.log(`## The console's reads over a day-long trail of ${rows.toLocaleString('en')} events`);
  console.log(
    '\nGET /admin/stats (HTTPS, admin bearer) vs its peer: the same counts by a time-range scan in the same database, medians of 5.\n',
  );
  console.log('| backend | range | step | buckets | tokens counted | /admin/stats ms | time-range scan ms | ratio |');
  console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |');
  const databaseUrl = await startPostgresIfConfigured();
  const results = [await benchConsoleStats({ rows })];
  if (databaseUrl) results.push(await benchConsoleStats({ rows, databaseUrl }));
  for (const r of results)
    for (const x of r.ranges)
      console.log(
        `| ${r.backend} | ${x.range} | ${x.step} | ${x.buckets} | ${x.counted} | ${x.statsMs.toFixed(1)} | ${x.peerMs.toFixed(1)} | ${(x.statsMs / x.peerMs).toFixed(2)} |`,
      );
  for (const r of results)
    console.log(
      `\n${r.backend}: trail written in ${r.fillSeconds.toFixed(1)} s; GET /admin/audit/stream delivered a token.issued event p50 ${r.streamMs.p50.toFixed(1)} ms, p99 ${r.streamMs.p99.toFixed(1)} ms after /token answered (${r.streamMs.samples} samples)`,
    );
  console.log('');
}

if (runs('replicas')) {
  console.log('\n## Issuance: one replica vs two on one PostgreSQL (issue 18)');
  const r = await benchReplicaScaling({ duration, rounds, connections });
  console.log(
    `PostgreSQL: a cluster of its own on this machine, ${r.postgres}; ${connections} connections split across the replicas.`,
  );
  console.log(
    '| replicas | tokens/s | p50 ms | p99 ms | IdP cores | PostgreSQL cores | tokens per replica CPU-s | tokens per server CPU-s (IdP + PG) | PostgreSQL share of CPU | errors |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const x of r.rows)
    console.log(
      `| ${x.replicas} | ${x.tokensPerSecond.toFixed(0)} | ${x.p50} | ${x.p99} | ${x.idpCores.toFixed(2)} | ${x.postgresCores.toFixed(2)} | ${x.perReplicaCpuSecond.toFixed(0)} | ${x.perServerCpuSecond.toFixed(0)} | ${(x.postgresShare * 100).toFixed(0)}% | ${x.errors} |`,
    );
  if (r.rows.some((x) => x.errors > 0)) failed = true;
}

if (runs('fleet')) {
  console.log('\n## Decision audit at fleet volume (issue 18): SDK audit queues of a fleet against one IdP');
  const seconds = Number(process.env.BENCH_FLEET_SECONDS ?? 10);
  const scenarios = [
    { name: '20 services × 2,000/s, allowRate 100 (default)', services: 20, rate: 2000, allowRate: 100 },
    { name: '20 services × 2,000/s, every allow its own event', services: 20, rate: 2000, allowRate: Infinity },
    { name: '100 services × 2,000/s, allowRate 100 (default)', services: 100, rate: 2000, allowRate: 100 },
  ];
  for (const [store, databaseUrl] of [
    ['SQLite', undefined],
    ['PostgreSQL', await startPostgresIfConfigured()],
  ] as const) {
    if (store === 'PostgreSQL' && !databaseUrl) continue;
    const r = await benchDecisionFleet({ seconds, databaseUrl, scenarios });
    console.log(`\n${store}:`);
    console.log(
      '| fleet | decisions/s | events/s at the IdP | individual/s | counted rows/s | IdP cores | counted for backlog | queued at end | drain ms | all accounted |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const [name, x] of Object.entries(r))
      console.log(
        `| ${name} | ${x.decisionsPerSecond.toFixed(0)} | ${x.eventsPerSecond.toFixed(0)} | ${x.individualPerSecond.toFixed(0)} | ${x.countedRowsPerSecond.toFixed(1)} | ${x.idpCores.toFixed(2)} | ${x.backlogCounted} | ${x.pendingAtEnd} | ${x.drainMs.toFixed(0)} | ${x.accounted ? 'yes' : 'NO'} |`,
      );
    if (Object.values(r).some((x) => !x.accounted)) failed = true;
  }
  console.log('2% of decisions denied and 1% decided by a @sensitive policy: those are always individual events.');
}

if (runs('statuslist')) {
  console.log('\n## Token Status List: building one list (SQLite; 1% revoked, one token revocation each)');
  console.log(
    '| entries | revoked | build ms (query + bits + ZLIB + ES256) | query ms | ZLIB level 9 ms | list token bytes |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of await benchStatusListBuild())
    console.log(
      `| ${r.entries} | ${r.revoked} | ${r.buildMs.toFixed(1)} | ${r.queryMs.toFixed(1)} | ${r.compressMs.toFixed(1)} | ${r.jwsBytes} |`,
    );
  console.log('A list is built once per ttl (60 s) or revocation, per replica, then served from memory.');
}

if (runs('login')) {
  console.log('\n## Users: sign-ins and refresh-token rotations (issue 15)');
  const r = await benchLogin({ duration, databaseUrl: await startPostgresIfConfigured() });
  console.log('| subject | per second | per server CPU-second | server cores | p50 ms |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const [name, x] of Object.entries(r))
    console.log(
      `| ${name} | ${x.perSecond.toFixed(1)} | ${x.perCpuSecond.toFixed(1)} | ${x.cores?.toFixed(2) ?? '—'} | ${x.p50?.toFixed(1) ?? '—'} |`,
    );
  console.log(
    '\nKeycloak sizes 15 password sign-ins per second per vCPU (its sizing guide); compare the per CPU-second column.',
  );
}

if (failed) {
  console.error('a benchmark saw errors');
  process.exitCode = 1;
}
