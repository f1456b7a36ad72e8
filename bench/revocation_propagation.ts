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
  samples: number;
  missing: number;
  /** The IdP's resident memory, and its heap after a GC, per open stream (bytes). */
  rssPerStream: number;
  heapPerStream: number;
}> {
  const proc = fork(fileURLToPath(new URL('./idp_child.ts', import.meta.url)), [], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
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
  const dispatcher = new Agent({ connect: { ca: target.ca! }, connections: options.subscribers + 10 });
  const issuer = target.issuer!;
  const arrivals = new Map<string, number[]>();
  const controllers: AbortController[] = [];
  const readers: Promise<void>[] = [];
  for (let i = 0; i < options.subscribers; i++) {
    const controller = new AbortController();
    controllers.push(controller);
    const res = await fetch(`${issuer}/feeds/stream?streams=revocations`, {
      headers: { authorization: target.authorization },
      signal: controller.signal,
      dispatcher,
    }).catch((err: Error) => {
      throw new Error(
        `opening stream ${i} of ${options.subscribers}: ${err.message} (${String((err.cause as Error)?.message)})`,
      );
    });
    if (res.status !== 200) throw new Error(`stream ${i}: HTTP ${res.status}`);
    readers.push(
      (async () => {
        const decoder = new TextDecoder();
        try {
          for await (const chunk of res.body!) {
            const now = performance.now();
            for (const m of decoder.decode(chunk as Uint8Array, { stream: true }).matchAll(/"ref":"([^"]+)"/g)) {
              const list = arrivals.get(m[1]!) ?? [];
              list.push(now);
              arrivals.set(m[1]!, list);
            }
          }
        } catch {
          /* aborted */
        }
      })(),
    );
  }
  process.stderr.write(`opened ${readers.length} streams\n`);
  // Each stream's first bytes have come: the IdP holds them all.
  await new Promise((r) => setTimeout(r, 1000));
  const opened = await memory();
  const latencies: number[] = [];
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
      const sent = performance.now();
      const revoke = await fetch(`${issuer}/revoke`, {
        method: 'POST',
        headers: { authorization: target.authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: `token=${access_token}`,
        dispatcher,
      });
      await revoke.arrayBuffer();
      const responded = performance.now();
      const deadline = responded + 2000;
      while ((arrivals.get(jti)?.length ?? 0) < options.subscribers && performance.now() < deadline)
        await new Promise((res) => setTimeout(res, 2));
      const got = arrivals.get(jti) ?? [];
      missing += options.subscribers - got.length;
      for (const at of got) latencies.push(at - sent);
      await new Promise((res) => setTimeout(res, 20));
    }
  } finally {
    controllers.forEach((c) => c.abort());
    await Promise.all(readers);
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
    samples: latencies.length,
    missing,
    rssPerStream: (opened.rss - before.rss) / options.subscribers,
    heapPerStream: (opened.heap - before.heap) / options.subscribers,
  };
}
