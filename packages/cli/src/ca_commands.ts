import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { adminHeaders, connection, print, show } from './command_helpers.ts';
import { endpoint } from './http_client.ts';
import type { WorkloadKeyType } from '@latchkey/sdk/workload';
import { basicAuthorization } from '@latchkey/protocol';

/** `--key-type` values and the SDK's key types. */
const KEY_TYPES: Record<string, WorkloadKeyType> = { p256: 'P-256', ed25519: 'Ed25519', rsa: 'RSA' };

/** `latchkey ca show|status|rotate` and `latchkey cert issue` (for services not written in TypeScript). */
export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('the workload CA');
  connection(
    ca.command('show').description('print the trust bundle (PEM) services verify workload certificates against'),
  ).action(async (opts) => {
    const res = await endpoint(opts).fetch('/ca/bundle');
    if (!res.ok) return void (await show(res));
    process.stdout.write(await res.text());
  });
  connection(
    ca
      .command('status')
      .description("the CA's roots and their states (announced, active, retiring)")
      .option('--admin-token <token>', 'admin token (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const body = (await show(await endpoint(opts).fetch('/admin/ca', { headers: adminHeaders(opts) }))) as
      | { roots: unknown[]; operator_managed: boolean }
      | undefined;
    if (body) print({ operator_managed: body.operator_managed, roots: body.roots });
  });
  connection(
    ca
      .command('rotate')
      .description(
        'start a root rotation: a new root joins the bundle now and signs after the announce period; the old one leaves once its certificates expired',
      )
      .option(
        '--announce <seconds>',
        'seconds the new root is only announced (default: the certificate lifetime, so every workload has it before it is used)',
      )
      .option('--admin-token <token>', 'admin token (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const announce = opts.announce === undefined ? undefined : Number(opts.announce);
    if (announce !== undefined && (!Number.isInteger(announce) || announce < 0)) {
      process.stderr.write('error: --announce must be a whole number of seconds\n');
      process.exit(2);
    }
    const res = await endpoint(opts).fetch('/admin/ca/rotate', {
      method: 'POST',
      headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
      body: JSON.stringify(announce === undefined ? {} : { announce_seconds: announce }),
    });
    const body = (await show(res)) as { roots: { serial: string; state: string; activate_at: number }[] } | undefined;
    if (!body) return;
    for (const r of body.roots)
      process.stdout.write(
        `${r.serial} ${r.state}${r.state === 'announced' ? ` (signs from ${new Date(r.activate_at * 1000).toISOString()})` : ''}\n`,
      );
  });

  const cert = program.command('cert').description('workload certificates (SPIFFE X.509-SVIDs)');
  connection(
    cert
      .command('issue')
      .description(
        "generate a key here, have the IdP certify it for the client's SPIFFE ID, write key.pem, cert.pem and bundle.pem",
      )
      .requiredOption('--client-id <id>', 'the client (service) the certificate is for')
      .option('--client-secret <secret>', 'its secret (LATCHKEY_CLIENT_SECRET)')
      .option(
        '--renew',
        'authenticate with the key.pem and cert.pem already in --out (a tls_client_auth client renewing)',
      )
      .option('--admin-token <token>', 'as the administrator, for a client without a secret (LATCHKEY_ADMIN_TOKEN)')
      .addOption(new Option('--key-type <type>', 'key type').choices(Object.keys(KEY_TYPES)).default('p256'))
      .requiredOption('--out <dir>', 'folder to write key.pem (0600), cert.pem and bundle.pem to'),
  ).action(async (opts) => {
    const secret = opts.clientSecret ?? process.env.LATCHKEY_CLIENT_SECRET;
    const asAdmin = !secret && !opts.renew && (opts.adminToken ?? process.env.LATCHKEY_ADMIN_TOKEN) !== undefined;
    if (!secret && !opts.renew && !asAdmin) {
      process.stderr.write(
        'error: one of --client-secret (LATCHKEY_CLIENT_SECRET), --renew, or --admin-token (LATCHKEY_ADMIN_TOKEN) is required\n',
      );
      process.exit(2);
    }
    const current = opts.renew ? { key: join(opts.out, 'key.pem'), cert: join(opts.out, 'cert.pem') } : undefined;
    if (current && !(existsSync(current.key) && existsSync(current.cert))) {
      process.stderr.write(`error: --renew needs ${current.key} and ${current.cert}\n`);
      process.exit(2);
    }
    // The private key is made here and never leaves this machine; the IdP sees only the CSR.
    // Loaded here: @peculiar/x509 is needed by this command only.
    const { createWorkloadCsr } = await import('@latchkey/sdk/workload');
    const { privateKeyPem, csrPem } = await createWorkloadCsr(KEY_TYPES[opts.keyType]);
    const auth: Record<string, string> = secret
      ? { authorization: basicAuthorization(opts.clientId, secret) }
      : asAdmin
        ? adminHeaders(opts)
        : {};
    const client = current
      ? endpoint(opts, { key: readFileSync(current.key, 'utf8'), cert: readFileSync(current.cert, 'utf8') })
      : endpoint(opts);
    const res = await client.fetch('/workload/certificate', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(asAdmin ? { csr: csrPem, client_id: opts.clientId } : { csr: csrPem }),
    });
    const body = (await show(res)) as
      | { certificate: string; trust_bundle: string; spiffe_id: string; expires_at: number }
      | undefined;
    if (!body) return;
    mkdirSync(opts.out, { recursive: true, mode: 0o700 });
    writeFileSync(join(opts.out, 'key.pem'), privateKeyPem, { mode: 0o600 });
    writeFileSync(join(opts.out, 'cert.pem'), body.certificate, { mode: 0o644 });
    writeFileSync(join(opts.out, 'bundle.pem'), body.trust_bundle, { mode: 0o644 });
    process.stdout.write(
      `${body.spiffe_id} until ${new Date(body.expires_at * 1000).toISOString()}: ${join(opts.out, 'cert.pem')}\n`,
    );
  });
}
