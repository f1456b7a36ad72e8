import { Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { endpoint } from './http_client.ts';
import { adminHeaders, collect, connection, print, show } from './command_helpers.ts';

/** `latchkey client create|list|show|delete|revoke|unlock` (admin). */
export function registerClientCommands(program: Command): void {
  const client = program.command('client').description('manage registered clients (admin)');

  connection(
    client
      .command('create [client_id]')
      .description('register a client; prints its credentials once')
      .option('--name <name>', 'client_name')
      .option('--audience <uri>', 'an audience the client may request tokens for (repeatable)', collect)
      .option('--default-audience <uri>', 'audience when the token request names none')
      .option('--scope <scope>', 'space-separated scopes the client may request')
      .option('--role <role>', 'a role carried in its tokens (repeatable)', collect)
      .addOption(
        new Option('--auth-method <method>', 'token endpoint auth method').choices([
          'client_secret_basic',
          'client_secret_post',
          'private_key_jwt',
          'tls_client_auth',
          'self_signed_tls_client_auth',
          'none',
        ]),
      )
      .option(
        '--grant-type <type>',
        'a grant the client may use (repeatable): client_credentials (the default), authorization_code, refresh_token, token-exchange',
        collect,
      )
      .option('--redirect-uri <uri>', 'a redirect URI, for authorization_code (repeatable)', collect)
      .option(
        '--jwks-file <file>',
        'public JWK Set for private_key_jwt (or with x5c certificates, for self_signed_tls_client_auth)',
      )
      .option('--jwks-uri <uri>', 'JWK Set URL for private_key_jwt or self_signed_tls_client_auth')
      .option('--bound-tokens', 'every token of this client is bound to its client certificate (RFC 8705 §3)')
      .option('--ttl <seconds>', 'access token lifetime')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (clientId: string | undefined, opts) => {
    const body: Record<string, unknown> = {
      client_id: clientId,
      client_name: opts.name,
      grant_types: (opts.grantType as string[] | undefined)?.map((g) =>
        g === 'token-exchange' ? 'urn:ietf:params:oauth:grant-type:token-exchange' : g,
      ),
      redirect_uris: opts.redirectUri,
      audiences: opts.audience,
      default_audience: opts.defaultAudience,
      scope: opts.scope,
      roles: opts.role,
      token_endpoint_auth_method: opts.authMethod,
      jwks_uri: opts.jwksUri,
      jwks: opts.jwksFile ? JSON.parse(readFileSync(opts.jwksFile, 'utf8')) : undefined,
      access_token_ttl: opts.ttl !== undefined ? Number(opts.ttl) : undefined,
      tls_client_certificate_bound_access_tokens: opts.boundTokens ? true : undefined,
    };
    const ep = endpoint(opts);
    print(
      await show(
        await ep.fetch('/register', {
          method: 'POST',
          headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      ),
    );
  });

  connection(
    client
      .command('list')
      .description('list clients')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const body = (await show(await endpoint(opts).fetch('/admin/clients', { headers: adminHeaders(opts) }))) as
      | { clients: Record<string, unknown>[] }
      | undefined;
    if (body)
      for (const c of body.clients)
        process.stdout.write(
          `${c.client_id}\t${c.client_name ?? ''}\t${(c.audiences as string[]).join(',')}\t${c.token_endpoint_auth_method}${c.disabled ? '\tdisabled' : ''}\n`,
        );
  });

  connection(
    client
      .command('show <client_id>')
      .description('show one client')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (id: string, opts) => {
    print(
      await show(
        await endpoint(opts).fetch(`/admin/clients/${encodeURIComponent(id)}`, { headers: adminHeaders(opts) }),
      ),
    );
  });

  connection(
    client
      .command('delete <client_id>')
      .description('delete a client')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (id: string, opts) => {
    const res = await endpoint(opts).fetch(`/admin/clients/${encodeURIComponent(id)}`, {
      method: 'DELETE',
      headers: adminHeaders(opts),
    });
    if (res.status === 204) process.stdout.write(`deleted ${id}\n`);
    else await show(res);
  });

  connection(
    client
      .command('revoke <client_id>')
      .description('disable a client and revoke every token it holds')
      .option('--compromised', 'its credential leaked: Shared Signals receivers also get a credential-compromise event')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (id: string, opts) => {
    const body = await show(
      await endpoint(opts).fetch(`/admin/clients/${encodeURIComponent(id)}/revoke`, {
        method: 'POST',
        headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
        body: JSON.stringify(opts.compromised ? { compromised: true } : {}),
      }),
    );
    if (body) process.stdout.write(`revoked ${id}: disabled, and its tokens issued until now are revoked\n`);
  });

  connection(
    client
      .command('unlock <client_id>')
      .description('lift a lock that a detector response put on a client')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (id: string, opts) => {
    const r = await show(
      await endpoint(opts).fetch(`/admin/clients/${encodeURIComponent(id)}/unlock`, {
        method: 'POST',
        headers: adminHeaders(opts),
      }),
    );
    if (r) process.stdout.write(`unlocked ${id}\n`);
  });
}
