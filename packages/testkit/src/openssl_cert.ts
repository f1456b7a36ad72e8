import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A self-signed P-256 certificate made by openssl (not by Latchkey), valid one day: `subject` as
 * `-subj`, each of `extensions` as an `-addext`. Written to `<dir>/<name>.key` and `<name>.pem`.
 */
export async function opensslSelfSigned(
  dir: string,
  name: string,
  subject: string,
  extensions: string[] = [],
): Promise<{ keyFile: string; certFile: string; key: string; cert: string }> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-subj',
    subject,
    ...extensions.flatMap((e) => ['-addext', e]),
  ]);
  return { keyFile, certFile, key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
}
