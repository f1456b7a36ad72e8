// Issuance on one IdP replica vs two on one PostgreSQL (issue 18): tokens/s at saturation, tokens
// per CPU-second per replica, and PostgreSQL's share of the CPU — where the scaling limit is.
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { startPostgresCluster } from '@latchkey/testkit';
import { type Child, cpu, start, stop } from './token_issuance.ts';

const TICK = 100; // USER_HZ: /proc times are in 1/100 s on Linux

/** CPU seconds used so far by the PostgreSQL server: the postmaster and every backend it forked. */
function postgresCpuSeconds(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ticks = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // f[1] is ppid; f[11], f[12] utime and stime (fields 14, 15 of proc(5)).
      if (Number(d) === postmaster || Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / TICK;
}

export interface ScalingRow {
  replicas: number;
  tokensPerSecond: number;
  p50: number;
  p99: number;
  /** CPU cores busy in the IdP processes (sum) and in PostgreSQL. */
  idpCores: number;
  postgresCores: number;
  /** Tokens per CPU-second of one replica (its own CPU). */
  perReplicaCpuSecond: number;
  /** Tokens per CPU-second of the whole server side (replicas + PostgreSQL). */
  perServerCpuSecond: number;
  /** PostgreSQL's share of the server side's CPU. */
  postgresShare: number;
  errors: number;
}

async function load(children: Child[], seconds: number, connections: number) {
  const per = Math.max(1, Math.floor(connections / children.length));
  const run = (c: Child, duration: number) =>
    autocannon({
      url: c.target.url,
      method: 'POST',
      connections: per,
      duration,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: c.target.authorization },
      body: c.target.body,
    });
  await Promise.all(children.map((c) => run(c, 1))); // warm-up
  return { run: () => Promise.all(children.map((c) => run(c, seconds))) };
}

export async function benchReplicaScaling(options: {
  duration: number;
  rounds: number;
  connections: number;
}): Promise<{ rows: ScalingRow[]; postgres: string }> {
  const cluster = await startPostgresCluster();
  const dataDir = join(cluster.dir, 'data');
  const rows: ScalingRow[] = [];
  try {
    for (const replicas of [1, 2]) {
      // A fresh database per shape; the replicas share it and one master key, as a deployment does.
      const name = `latchkey_scale_${replicas}`;
      const admin = new pg.Client({ connectionString: cluster.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const url = cluster.url.replace(/\/postgres$/, `/${name}`);
      process.env.BENCH_MASTER_KEY = randomBytes(32).toString('base64');
      const children: Child[] = [];
      for (let i = 0; i < replicas; i++) children.push(await start('idp_child.ts', ['token', url]));
      try {
        const samples: ScalingRow[] = [];
        const l = await load(children, options.duration, options.connections);
        for (let r = 0; r < options.rounds; r++) {
          const before = await Promise.all(children.map(cpu));
          const pg0 = postgresCpuSeconds(dataDir);
          const t0 = performance.now();
          const results = await l.run();
          const wall = (performance.now() - t0) / 1000;
          const after = await Promise.all(children.map(cpu));
          const pgSec = postgresCpuSeconds(dataDir) - pg0;
          const idpSec = after.reduce(
            (n, a, i) => n + (a.user - before[i]!.user + a.system - before[i]!.system) / 1e6,
            0,
          );
          const total = results.reduce((n, x) => n + x.requests.total, 0);
          samples.push({
            replicas,
            tokensPerSecond: total / wall,
            p50: Math.max(...results.map((x) => x.latency.p50)),
            p99: Math.max(...results.map((x) => x.latency.p99)),
            idpCores: idpSec / wall,
            postgresCores: pgSec / wall,
            perReplicaCpuSecond: total / idpSec,
            perServerCpuSecond: total / (idpSec + pgSec),
            postgresShare: pgSec / (idpSec + pgSec),
            errors: results.reduce((n, x) => n + x.non2xx + x.errors, 0),
          });
        }
        const med = <K extends keyof ScalingRow>(k: K) =>
          [...samples.map((s) => s[k] as number)].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
        rows.push({
          replicas,
          tokensPerSecond: med('tokensPerSecond'),
          p50: med('p50'),
          p99: med('p99'),
          idpCores: med('idpCores'),
          postgresCores: med('postgresCores'),
          perReplicaCpuSecond: med('perReplicaCpuSecond'),
          perServerCpuSecond: med('perServerCpuSecond'),
          postgresShare: med('postgresShare'),
          errors: samples.reduce((n, s) => n + s.errors, 0),
        });
      } finally {
        for (const c of children) await stop(c);
      }
    }
  } finally {
    await cluster.close();
  }
  return { rows, postgres: 'fsync on, synchronous_commit on (the defaults)' };
}
