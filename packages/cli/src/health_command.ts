import { rootCertificates } from 'node:tls';
import type { Command } from 'commander';
import { Agent, fetch } from 'undici';
import { localCa } from './http_client.ts';

/**
 * `latchkey health [--ready]`: asks the IdP this environment serves — on loopback, at
 * `LATCHKEY_PORT` — for `/healthz` (or `/readyz`) and exits 0 when it answers 200, 1 otherwise.
 * What a container's HEALTHCHECK runs (the image has no curl). Over TLS the server's certificate
 * is checked for the issuer's host name (or `localhost`) against the local CA and the system roots.
 */
export function registerHealthCommand(program: Command): void {
  program
    .command('health')
    .description("check the local IdP's /healthz (or /readyz with --ready): exit 0 when it answers 200")
    .option('--ready', 'ask /readyz: would a load balancer send requests here')
    .option('--timeout <seconds>', 'give up after this long', '3')
    .action(async (opts: { ready?: boolean; timeout: string }) => {
      const env = process.env;
      const tls = !/^(false|off|0|no)$/i.test(env.LATCHKEY_TLS ?? 'true');
      const port = env.LATCHKEY_PORT ?? '8443';
      const host = env.LATCHKEY_ISSUER ? new URL(env.LATCHKEY_ISSUER).hostname : 'localhost';
      const ca = localCa();
      const dispatcher = new Agent({
        connect: { servername: host, ...(ca ? { ca: [ca, ...rootCertificates] } : {}) },
      });
      const path = opts.ready ? '/readyz' : '/healthz';
      try {
        const res = await fetch(`${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`, {
          dispatcher,
          signal: AbortSignal.timeout(Number(opts.timeout) * 1000),
        });
        const body = await res.text();
        process.stdout.write(`${res.status} ${body}\n`);
        process.exitCode = res.status === 200 ? 0 : 1;
      } catch (err) {
        process.stderr.write(`latchkey health: ${(err as Error).message} (${String((err as Error).cause ?? '')})\n`);
        process.exitCode = 1;
      } finally {
        await dispatcher.close();
      }
    });
}
