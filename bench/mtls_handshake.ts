// Full TLS handshakes per second, client and server in this process: the SDK's mutual-TLS server
// and client options (P-256 SVIDs from a real IdP, client certificate verified against the bundle,
// SPIFFE allowlist on both sides) beside plain node:tls with the same server certificate and no
// client certificate, and beside node:tls mutual TLS without the allowlists (what the SDK adds).
// No session resumption: every connection is a full handshake.
import { connect, createServer, type ConnectionOptions, type Server, type TLSSocket } from 'node:tls';
import { TLS_OPTIONS } from '@latchkey/protocol';
import { createWorkloadIdentity } from '@latchkey/sdk/workload';
import { startTestIdp } from '@latchkey/testkit';

async function handshakes(
  server: Server,
  client: () => ConnectionOptions,
  ms: number,
  concurrency = 4,
): Promise<{ perSecond: number; failures: number }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  let n = 0;
  let failures = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  const one = () =>
    new Promise<void>((resolve) => {
      const s = connect({ ...client(), host: '127.0.0.1', port });
      s.once('data', () => {
        n++;
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        failures++;
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  const perSecond = n / ((performance.now() - t0) / 1000);
  await new Promise((r) => server.close(r));
  return { perSecond, failures };
}

export async function benchHandshakes(options: {
  ms: number;
  rounds: number;
}): Promise<Record<string, { perSecond: number; failures: number }>> {
  const t = await startTestIdp({ config: { trustDomain: 'bench.test' } });
  try {
    const reg = async (id: string) =>
      (await t.register({ client_id: id, audiences: ['https://x.internal'] })) as Record<string, string>;
    const a = await reg('server-svc');
    const b = await reg('client-svc');
    const server = await createWorkloadIdentity({
      issuer: t.issuer,
      credentials: { clientId: 'server-svc', clientSecret: a.client_secret! },
      idpCa: t.caPem!,
      authorizePeer: ['spiffe://bench.test/svc/client-svc'],
    });
    const client = await createWorkloadIdentity({
      issuer: t.issuer,
      credentials: { clientId: 'client-svc', clientSecret: b.client_secret! },
      idpCa: t.caPem!,
      authorizePeer: ['spiffe://bench.test/svc/server-svc'],
    });
    const reply = (s: TLSSocket) => s.end('x');
    const subjects: [string, () => Server, () => ConnectionOptions][] = [
      [
        'peer: node:tls, server certificate only',
        () => createServer({ key: server.serverOptions().key, cert: server.certificate.pem, ...TLS_OPTIONS }, reply),
        () => ({ ca: server.trustBundlePem, checkServerIdentity: () => undefined }),
      ],
      [
        'peer: node:tls mutual TLS (client certificate verified), no allowlist',
        () => createServer({ ...server.serverOptions() }, reply),
        () => ({
          key: client.clientOptions().key,
          cert: client.certificate.pem,
          ca: client.trustBundlePem,
          checkServerIdentity: () => undefined,
        }),
      ],
      [
        'Latchkey SDK: mutual TLS, SPIFFE allowlists both ways',
        () => server.attachServer(createServer(server.serverOptions(), reply)),
        () => client.clientOptions(),
      ],
    ];
    const samples = new Map<string, { perSecond: number; failures: number }[]>();
    for (let round = 0; round < options.rounds; round++) {
      for (const [name, makeServer, clientOptions] of subjects)
        samples.set(name, [...(samples.get(name) ?? []), await handshakes(makeServer(), clientOptions, options.ms)]);
    }
    await server.close();
    await client.close();
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    return Object.fromEntries(
      [...samples].map(([k, v]) => [
        k,
        { perSecond: median(v.map((x) => x.perSecond)), failures: v.reduce((s, x) => s + x.failures, 0) },
      ]),
    );
  } finally {
    await t.close();
  }
}
