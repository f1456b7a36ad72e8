import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Asserts with openssl s_client that the TLS server on 127.0.0.1:`port` keeps to Latchkey's TLS
 * profile: a TLS 1.1 ClientHello gets a protocol_version alert, a TLS 1.2 client offering only CBC
 * suites a handshake_failure, and TLS 1.2 negotiates ECDHE with an AEAD cipher. `clientArgs`
 * adds options such as `-cert`/`-key` for a server that requires a client certificate.
 * (@SECLEVEL=0 lets this openssl offer the old protocol and suites at all, so each refusal is the
 * server's.)
 */
export async function assertTlsProfile(port: number, clientArgs = ''): Promise<void> {
  const sClient = async (args: string) =>
    (await run('sh', ['-c', `echo | openssl s_client -connect 127.0.0.1:${port} ${clientArgs} ${args} 2>&1; true`]))
      .stdout;
  const old = await sClient('-tls1_1 -cipher "DEFAULT:@SECLEVEL=0"');
  assert.match(old, /alert protocol version/i, 'TLS 1.1 is refused');
  assert.match(old, /Cipher is \(NONE\)/);
  const cbc = await sClient('-tls1_2 -cipher "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0"');
  assert.match(cbc, /alert handshake failure/i, 'CBC suites are refused');
  assert.match(cbc, /Cipher is \(NONE\)/);
  assert.match(
    await sClient('-tls1_2'),
    /Cipher is ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)/,
  );
}
