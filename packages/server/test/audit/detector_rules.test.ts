// The detectors' arithmetic over long synthetic timelines (hours of events in milliseconds). The
// end-to-end tests in detectors.test.ts drive each one with the real actions instead.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditRecord } from '@latchkey/server';
import { failedAuthBurst } from '../../src/audit/detectors/failed_auth_burst.ts';
import { issuanceSpike } from '../../src/audit/detectors/issuance_spike.ts';

let seq = 0;
const T0 = Date.parse('2026-11-28T00:00:00Z');
const ev = (ms: number, e: Partial<AuditRecord>): AuditRecord => ({
  seq: ++seq,
  prevHash: null,
  hash: null,
  time: new Date(T0 + ms).toISOString(),
  type: 'token.issued',
  outcome: 'success',
  actor: 'x',
  ...e,
});

test('issuance_spike: a day of diurnal, noisy load stays quiet; ten times the usual in one window fires once', () => {
  const d = issuanceSpike({ factor: 10, windowSeconds: 60, min: 100 });
  let findings = 0;
  let rng = 42;
  const random = () => (rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let minute = 0; minute < 24 * 60; minute++) {
    // 20 tokens a minute at night, 120 at the day's peak, ±30% noise; some idle minutes.
    const base = 70 - 50 * Math.cos((2 * Math.PI * minute) / (24 * 60));
    const n = random() < 0.02 ? 0 : Math.round(base * (0.7 + 0.6 * random()));
    for (let i = 0; i < n; i++)
      findings += d.observe(ev(minute * 60_000 + (i * 60_000) / (n + 1), { client_id: 'steady' })).length;
  }
  assert.equal(findings, 0, 'benign load raised an alert');
  const spike: number[] = [];
  const start = 24 * 60 * 60_000;
  for (let i = 0; i < 1500; i++) spike.push(d.observe(ev(start + i * 30, { client_id: 'steady' })).length);
  assert.equal(
    spike.reduce((a, b) => a + b, 0),
    1,
    'one alert for the spiking window',
  );
});

test("issuance_spike: a new client is judged against the minimum only; another client's load is not its baseline", () => {
  const d = issuanceSpike({ factor: 10, windowSeconds: 60, min: 100 });
  let n = 0;
  for (let i = 0; i < 90; i++) n += d.observe(ev(i * 100, { client_id: 'new' })).length;
  assert.equal(n, 0);
  for (let i = 0; i < 101; i++) n += d.observe(ev(120_000 + i * 10, { client_id: 'fresh' })).length;
  assert.equal(n, 1);
});

test('failed_auth_burst: failures spread wider than the window stay quiet; the same number inside it fires', () => {
  const d = failedAuthBurst({ threshold: 10, windowSeconds: 60 });
  const fail = (ms: number, ip: string) =>
    d.observe(
      ev(ms, { type: 'client.auth_failed', outcome: 'failure', client_id: 'c', source_ip: ip, reason: 'bad_secret' }),
    );
  let n = 0;
  for (let i = 0; i < 100; i++) n += fail(i * 7_000, `10.0.0.${i % 50}`).length; // one every 7 s: 8–9 per minute
  assert.equal(n, 0);
  const burst = Array.from({ length: 10 }, (_, i) => fail(1_000_000 + i * 100, '10.9.9.9')).flat();
  assert.deepEqual(
    burst.map((f) => f.key),
    ['client:c', 'ip:10.9.9.9'],
  );
  assert.deepEqual(burst[0]!.detail.source_ips, ['10.9.9.9']);
});
