import type { Command } from 'commander';

/** Prints a JSON body, or an RFC 6749 error, and sets the exit code. */
export async function show(res: Response | import('undici').Response): Promise<unknown> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const err = body as { error?: string; error_description?: string } | undefined;
    process.stderr.write(
      `error: HTTP ${res.status} ${err?.error ?? ''}${err?.error_description ? `: ${err.error_description}` : ''}\n`,
    );
    process.exitCode = 1;
    return undefined;
  }
  return body;
}

export const print = (v: unknown): void => {
  if (v !== undefined) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
};

export const connection = (cmd: Command): Command =>
  cmd
    .option(
      '--url <url>',
      'IdP base URL (LATCHKEY_URL; default LATCHKEY_ISSUER, or https://localhost:$LATCHKEY_PORT, or https://localhost:8443)',
    )
    .option('--ca <file>', 'CA certificate to trust (LATCHKEY_CA_FILE; default <data dir>/ca.pem)')
    .option('--data-dir <dir>', 'data folder, to find ca.pem (LATCHKEY_DATA_DIR)');

export const adminHeaders = (opts: { adminToken?: string }): Record<string, string> => {
  const token = opts.adminToken ?? process.env.LATCHKEY_ADMIN_TOKEN;
  if (!token) {
    process.stderr.write('error: the admin token is required (--admin-token or LATCHKEY_ADMIN_TOKEN)\n');
    process.exit(2);
  }
  return { authorization: `Bearer ${token}` };
};

export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
