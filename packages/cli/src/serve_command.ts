import { Option, type Command } from 'commander';
import type { ConfigInput } from '@latchkey/server';

/** `latchkey serve`: the IdP in this process (the IdP package is loaded only here). */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('start the identity provider (what `npm start` runs)')
    .option('--port <port>', 'port (LATCHKEY_PORT, default 8443)')
    .option('--host <host>', 'interface (LATCHKEY_HOST, default 127.0.0.1)')
    .option('--issuer <url>', 'issuer identifier (LATCHKEY_ISSUER)')
    .option('--data-dir <dir>', 'data folder (LATCHKEY_DATA_DIR, default ./.latchkey)')
    .option('--database-url <url>', 'PostgreSQL URL (LATCHKEY_DATABASE_URL)')
    .addOption(new Option('--tls <mode>', 'HTTPS on or off (LATCHKEY_TLS)').choices(['on', 'off']))
    .option('--tls-cert <file>', 'PEM certificate (LATCHKEY_TLS_CERT)')
    .option('--tls-key <file>', 'PEM private key (LATCHKEY_TLS_KEY)')
    .option('--signing-alg <alg>', 'ES256, EdDSA or RS256 (LATCHKEY_SIGNING_ALG)')
    .option('--log-level <level>', 'log level (LATCHKEY_LOG_LEVEL)')
    .action(async (opts: Record<string, string | undefined>) => {
      // The IdP is loaded only to serve: every other command answers without it.
      const { configFromEnv, insecureWarnings, loadConfig, startIdp } = await import('@latchkey/server');
      const { input, unknown } = configFromEnv(process.env);
      const flags: ConfigInput = {
        port: opts.port,
        host: opts.host,
        issuer: opts.issuer,
        dataDir: opts.dataDir,
        databaseUrl: opts.databaseUrl,
        tls: opts.tls,
        tlsCert: opts.tlsCert,
        tlsKey: opts.tlsKey,
        signingAlg: opts.signingAlg,
        logLevel: opts.logLevel,
      };
      for (const [k, v] of Object.entries(flags)) if (v !== undefined) input[k as keyof ConfigInput] = v;
      let config;
      try {
        config = loadConfig(input, unknown);
      } catch (err) {
        process.stderr.write(`latchkey: ${(err as Error).message}\n`);
        process.exit(2);
      }
      for (const w of insecureWarnings(config)) process.stderr.write(`latchkey: warning: ${w}\n`);
      const idp = await startIdp(config);
      if (idp.generatedAdminToken) {
        process.stdout.write(
          `\nLatchkey generated the bootstrap admin token. It is shown this once and stored only hashed:\n\n  LATCHKEY_ADMIN_TOKEN=${idp.generatedAdminToken}\n\n`,
        );
      }
      process.stdout.write(
        `Latchkey IdP listening on ${idp.url} (issuer ${idp.issuer}, ${idp.storage.kind} storage)\n`,
      );
      if (idp.caPem) process.stdout.write(`Local CA certificate: ${config.dataDir}/ca.pem\n`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stdout.write(
          `${signal}: draining for ${config.shutdownGrace}s (readyz says draining), then finishing in-flight requests and flushing audit\n`,
        );
        (signal === 'SIGTERM' ? idp.shutdown() : idp.close()).then(
          () => process.exit(0),
          (err: Error) => {
            process.stderr.write(`latchkey: shutdown failed: ${err.message}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
