import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, fetch } from 'undici';
import type { Target } from './cpu.ts';

const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

/**
 * Time from sending a /revoke request to the entry's arrival at each of `subscribers` SSE streams
 * (one IdP on SQLite, over loopback HTTPS). Each revocation is a fresh token of the benchmark
 * client; arrival is stamped when the subscriber's chunk is read in this process.
 */
export async function benchRevocationPropagation(options: { subscribers: number; revocations: number }): Promise<{
  p50: number;
  p99: number;
  max: number;
  min: number;
  /** From sending /revoke until the IdP had written the entry to every open stream (its feed.deliver span's end), per revocation. */
  handoffP50: number;
  handoffMax: number;
  samples: number;
  missing: number;
  /** The IdP's resident memory, and its heap after a GC, per open stream (bytes). */
  rssPerStream: number;
  heapPerStream: number;
}> {
  const proc = fork(fileURLToPath(new URL('./idp_child.ts', import.meta.url)), [], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_FEED_SPANS: '1' },
  });
  const target = await new Promise<Target>((resolve) =>
    proc.once('message', (m: { target: Target }) => resolve(m.target)),
  );
  const memory = () =>
    new Promise<{ rss: number; heap: number }>((resolve) => {
      const on = (m: { kind: string; rss: number; heap: number }) => {
        if (m.kind !== 'memory') return;
        proc.off('message', on);
        resolve(m);
      };
      proc.on('message', on);
      proc.send({ kind: 'memory' });
    });
  const before = await memory();
  const dispatcher = new Agent({ connect: { ca: target.ca! }, connections: 10 });
  const issuer = target.issuer!;
  // The subscribers live in reader processes (BENCH_READER_PROCS, default 4), each stamping arrivals
  // with the system clock: one JS thread reading 10,000 TLS streams would be the thing measured.
  const procs = Number(process.env.BENCH_READER_PROCS ?? 4);
  const readers = Array.from({ length: procs }, () =>
    fork(fileURLToPath(new URL('./sse_reader_child.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  );
  const reply = <T>(child: (typeof readers)[number], kind: string) =>
    new Promise<T>((resolve) => {
      const on = (m: { kind: string }) => {
        if (m.kind !== kind) return;
        child.off('message', on);
        resolve(m as T);
      };
      child.on('message', on);
    });
  await Promise.all(
    readers.map((r, i) => {
      const count = Math.floor(options.subscribers / procs) + (i < options.subscribers % procs ? 1 : 0);
      const opened = reply(r, 'opened');
      r.send({ kind: 'start', issuer, authorization: target.authorization, ca: target.ca!, count });
      return opened;
    }),
  );
  /** Every reader's arrival times of one revocation (epoch ms). */
  const arrivalsOf = async (ref: string): Promise<number[]> => {
    const all: number[] = [];
    for (const r of readers) {
      const got = reply<{ times: number[] }>(r, 'arrivals');
      r.send({ kind: 'collect', ref });
      all.push(...(await got).times);
    }
    return all;
  };
  process.stderr.write(`opened ${options.subscribers} streams in ${procs} reader processes\n`);
  // Each stream's first bytes have come: the IdP holds them all.
  await new Promise((r) => setTimeout(r, 1000));
  const opened = await memory();
  const latencies: number[] = [];
  const handoffs: number[] = [];
  const feedSpans = () =>
    new Promise<{ start: number; end: number; streams: number }[]>((resolve) => {
      const on = (m: { kind: string; deliveries: { start: number; end: number; streams: number }[] }) => {
        if (m.kind !== 'feedSpans') return;
        proc.off('message', on);
        resolve(m.deliveries);
      };
      proc.on('message', on);
      proc.send({ kind: 'feedSpans' });
    });
  let missing = 0;
  try {
    for (let r = 0; r < options.revocations; r++) {
      const tokenRes = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: target.authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
        dispatcher,
      }).catch((err: Error) => {
        throw new Error(`token ${r}: ${err.message} (${String((err.cause as Error)?.message)})`);
      });
      const { access_token } = (await tokenRes.json()) as { access_token: string };
      const jti = JSON.parse(Buffer.from(access_token.split('.')[1]!, 'base64url').toString()).jti as string;
      // From the moment /revoke is sent: since the audit issue, the answer waits for the audit
      // commit, which comes after the feed append, so subscribers often have it before the answer.
      const sent = performance.timeOrigin + performance.now();
      const revoke = await fetch(`${issuer}/revoke`, {
        method: 'POST',
        headers: { authorization: target.authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: `token=${access_token}`,
        dispatcher,
      });
      await revoke.arrayBuffer();
      const deadline = Date.now() + 3000;
      let got: number[] = [];
      for (;;) {
        await new Promise((res) => setTimeout(res, 50));
        got = await arrivalsOf(jti);
        if (got.length >= options.subscribers || Date.now() > deadline) break;
      }
      missing += options.subscribers - got.length;
      const delivered = (await feedSpans()).filter((d) => d.start >= sent && d.streams > 0);
      if (delivered.length > 0) handoffs.push(Math.max(...delivered.map((d) => d.end)) - sent);
      for (const at of got) latencies.push(at - sent);
      await new Promise((res) => setTimeout(res, 20));
    }
  } finally {
    for (const r of readers) {
      const exited = new Promise((res) => r.once('exit', res));
      r.send({ kind: 'stop' });
      await exited;
    }
    await new Promise((res) => {
      proc.once('exit', res);
      proc.send({ kind: 'stop' });
    });
    await dispatcher.close();
  }
  latencies.sort((a, b) => a - b);
  return {
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies[latencies.length - 1] ?? NaN,
    min: latencies[0] ?? NaN,
    handoffP50: quantile(
      [...handoffs].sort((a, b) => a - b),
      0.5,
    ),
    handoffMax: Math.max(...handoffs),
    samples: latencies.length,
    missing,
    rssPerStream: (opened.rss - before.rss) / options.subscribers,
    heapPerStream: (opened.heap - before.heap) / options.subscribers,
  };
}
