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
export async function benchRevocationPropagation(options: {
  subscribers: number;
  revocations: number;
}): Promise<{ p50: number; p99: number; max: number; min: number; samples: number; missing: number }> {
  const proc = fork(fileURLToPath(new URL('./idp_child.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const target = await new Promise<Target>((resolve) =>
    proc.once('message', (m: { target: Target }) => resolve(m.target)),
  );
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
  const latencies: number[] = [];
  let missing = 0;
  try {
    for (let r = 0; r < options.revocations; r++) {
      const tokenRes = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: target.authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
        dispatcher,
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
  };
}
