import { webcrypto } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { Option, type Command } from 'commander';
import { connection, show } from './command_helpers.ts';
import { endpoint } from './http_client.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const KEY_TYPES = {
  p256: { gen: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  ed25519: { gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  rsa: { gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } },
} as const;

const pem = (der: ArrayBuffer, label: string): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;

/** `latchkey ca show` and `latchkey cert issue` (for services not written in TypeScript). */
export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('the workload CA');
  connection(ca.command('show').description('print the trust bundle (PEM) services verify workload certificates against')).action(async (opts) => {
    const res = await endpoint(opts).fetch('/ca/bundle');
    if (!res.ok) return void (await show(res));
    process.stdout.write(await res.text());
  });

  const cert = program.command('cert').description('workload certificates (SPIFFE X.509-SVIDs)');
  connection(cert.command('issue').description('generate a key here, have the IdP certify it for the client\'s SPIFFE ID, write key.pem, cert.pem and bundle.pem')
    .requiredOption('--client-id <id>', 'the client (service) the certificate is for')
    .option('--client-secret <secret>', 'its secret (LATCHKEY_CLIENT_SECRET)')
    .addOption(new Option('--key-type <type>', 'key type').choices(Object.keys(KEY_TYPES)).default('p256'))
    .requiredOption('--out <dir>', 'folder to write key.pem (0600), cert.pem and bundle.pem to')).action(async (opts) => {
    const secret = opts.clientSecret ?? process.env.LATCHKEY_CLIENT_SECRET;
    if (!secret) {
      process.stderr.write('error: --client-secret or LATCHKEY_CLIENT_SECRET is required\n');
      process.exit(2);
    }
    const kt = KEY_TYPES[opts.keyType as keyof typeof KEY_TYPES];
    // The private key is made here and never leaves this machine; the IdP sees only the CSR.
    const keys = (await webcrypto.subtle.generateKey(kt.gen as EcKeyGenParams, true, ['sign', 'verify'])) as CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${String(opts.clientId).replace(/[,=+<>#;"\\]/g, '_')}`, keys, signingAlgorithm: kt.sign as EcdsaParams });
    const enc = (s: string) => encodeURIComponent(s);
    const res = await endpoint(opts).fetch('/workload/certificate', {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${enc(opts.clientId)}:${enc(secret)}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ csr: csr.toString('pem') }),
    });
    const body = (await show(res)) as { certificate: string; trust_bundle: string; spiffe_id: string; expires_at: number } | undefined;
    if (!body) return;
    mkdirSync(opts.out, { recursive: true, mode: 0o700 });
    writeFileSync(join(opts.out, 'key.pem'), pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'), { mode: 0o600 });
    writeFileSync(join(opts.out, 'cert.pem'), body.certificate, { mode: 0o644 });
    writeFileSync(join(opts.out, 'bundle.pem'), body.trust_bundle, { mode: 0o644 });
    process.stdout.write(`${body.spiffe_id} until ${new Date(body.expires_at * 1000).toISOString()}: ${join(opts.out, 'cert.pem')}\n`);
  });
}
