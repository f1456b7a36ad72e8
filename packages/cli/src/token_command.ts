import type { Command } from 'commander';
import { endpoint } from './http_client.ts';
import { basicAuthorization } from '@latchkey/protocol';
import { collect, connection, print, show } from './command_helpers.ts';

/** `latchkey token`: a client_credentials token for a quick check. */
export function registerTokenCommand(program: Command): void {
  connection(
    program
      .command('token')
      .description('get an access token with client_credentials (client_secret_basic) for a quick check')
      .requiredOption('--client-id <id>', 'client id')
      .option('--client-secret <secret>', 'client secret (LATCHKEY_CLIENT_SECRET)')
      .option('--audience <uri>', 'resource / audience (repeatable)', collect)
      .option('--scope <scope>', 'scope')
      .option('--decode', 'print the decoded claims instead of the token'),
  ).action(async (opts) => {
    const secret = opts.clientSecret ?? process.env.LATCHKEY_CLIENT_SECRET;
    if (!secret) {
      process.stderr.write('error: --client-secret or LATCHKEY_CLIENT_SECRET is required\n');
      process.exit(2);
    }
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    for (const a of (opts.audience as string[] | undefined) ?? []) form.append('resource', a);
    if (opts.scope) form.set('scope', opts.scope);
    const res = await endpoint(opts).fetch('/token', {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basicAuthorization(opts.clientId, secret),
      },
      body: form.toString(),
    });
    const body = (await show(res)) as { access_token: string } | undefined;
    if (!body) return;
    if (!opts.decode) {
      process.stdout.write(`${body.access_token}\n`);
      return;
    }
    const [h, p] = body.access_token.split('.');
    print({
      header: JSON.parse(Buffer.from(h as string, 'base64url').toString()),
      claims: JSON.parse(Buffer.from(p as string, 'base64url').toString()),
      bytes: body.access_token.length,
    });
  });
}
