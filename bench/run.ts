// npm run bench — each hot path beside a peer in the same run; medians of interleaved rounds.
// BENCH_DURATION (seconds per measurement, default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 16).
import { cpus } from 'node:os';
import { benchRevocationPropagation } from './revocation_propagation.ts';
import { benchTokenIssuance } from './token_issuance.ts';
import { benchVerification } from './verification.ts';

const duration = Number(process.env.BENCH_DURATION ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);

console.log(`# Latchkey benchmarks — ${new Date().toISOString()} — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model}`);
console.log(`# ${rounds} interleaved rounds of ${duration}s, ${connections} keep-alive HTTPS connections, medians\n`);

console.log('## Token issuance over loopback HTTPS');
const results = await benchTokenIssuance({ duration, rounds, connections });
const ceiling = Object.values(results)[0]!;
console.log('| subject | tokens/s | p50 ms | p99 ms | server cores | tokens per CPU-second | vs ceiling (per CPU-s) | errors |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [name, r] of Object.entries(results)) {
  console.log(`| ${name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.cores.toFixed(2)} | ${r.perCore.toFixed(0)} | ${((r.perCore / ceiling.perCore) * 100).toFixed(0)}% | ${r.non2xx} |`);
}
const idp = Object.entries(results).find(([n]) => n.startsWith('Latchkey'))![1];
console.log(`\nLatchkey access token size: ${idp.tokenBytes} bytes (ES256, one audience, one scope)`);

console.log('\n## Revocation propagation over loopback HTTPS (SSE)');
const subscribers = Number(process.env.BENCH_SUBSCRIBERS ?? 100);
const revocations = Number(process.env.BENCH_REVOCATIONS ?? 50);
const prop = await benchRevocationPropagation({ subscribers, revocations });
console.log(`${revocations} revocations × ${subscribers} concurrent stream subscribers: ${prop.samples} arrivals, ${prop.missing} missing`);
console.log('| from /revoke response to arrival | p50 ms | p99 ms | max ms |');
console.log('| --- | ---: | ---: | ---: |');
console.log(`| Latchkey /feeds/stream | ${prop.p50.toFixed(2)} | ${prop.p99.toFixed(2)} | ${prop.max.toFixed(2)} |`);
if (prop.missing > 0) process.exitCode = 1;

console.log('\n## Token verification, one thread, ES256 (issue 4)');
const ver = await benchVerification({ ms: Number(process.env.BENCH_VERIFY_MS ?? 2000), rounds, tokens: 2000 });
const rateOf = (prefix: string) => [...ver.rates].find(([k]) => k.startsWith(prefix))![1];
console.log('| subject | verifications/s | vs (a) | vs (b) |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, r] of ver.rates) console.log(`| ${name} | ${r.toFixed(0)} | ${((r / rateOf('(a)')) * 100).toFixed(0)}% | ${(r / rateOf('(b)')).toFixed(1)}x |`);
console.log(`\nRevocation set with ${ver.entries} token entries: ${(ver.revocationSetBytes / 1024 / 1024).toFixed(1)} MB of heap${ver.measuredWithGc ? '' : ' (without --expose-gc: approximate)'}`);

if (idp.non2xx > 0) {
  console.error('benchmark saw errors from the IdP');
  process.exitCode = 1;
}
