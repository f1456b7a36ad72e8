import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { endpoint } from './http_client.ts';
import { adminHeaders, collect, connection, show } from './command_helpers.ts';

interface Explanation {
  issuer: string | null;
  subject: string | null;
  checks: { rule: string; client_id: string; matched: boolean; failed: string[] }[];
  match: { rule: string; client_id: string } | null;
  verified: boolean;
  error: { reason: string; description: string } | null;
}

/** `latchkey federation add|list|test|remove` (admin): workloads that get tokens with their platform's identity. */
export function registerFederationCommands(program: Command): void {
  const federation = program
    .command('federation')
    .description(
      'trust a platform’s workload identity (Kubernetes, CI, any OIDC issuer, SPIFFE) and map it to clients (admin)',
    );

  connection(
    federation
      .command('add <rule>')
      .description(
        'trust an issuer (made or updated from the issuer options) and map its tokens to a client with a rule',
      )
      .requiredOption('--issuer-name <name>', 'the trusted issuer this rule applies to (made if new)')
      .option('--issuer <iss>', 'the exact iss of its tokens (or, with --spiffe, the trust domain)')
      .option('--spiffe', 'a SPIFFE trust domain: JWT-SVIDs (client_assertion_type …:jwt-spiffe)')
      .option('--discovery', 'find its keys by OpenID Connect Discovery')
      .option('--jwks-uri <url>', 'its JWKS (or SPIFFE bundle endpoint) URL')
      .option('--jwks-file <file>', 'its keys, inline (a JWK Set file)')
      .option(
        '--alg <alg>',
        'an allowed signing algorithm (repeatable; default RS256, ES256, ES384, PS256, EdDSA)',
        collect,
      )
      .option('--allow-private-addresses', 'its URLs may be on loopback, private or link-local addresses (in-cluster)')
      .option('--allow-http', 'its URLs may be plain http')
      .option('--reusable', 'a token may authenticate more than once within its lifetime (default: once)')
      .requiredOption('--client <client_id>', 'the client its matching tokens authenticate as')
      .requiredOption('--subject <sub>', 'the sub the token must have (* matches any run of characters)')
      .option('--audience <aud>', 'the aud the token must carry (default: this IdP’s issuer or token endpoint)')
      .option(
        '--claim <pointer=value>',
        'a claim condition, e.g. /kubernetes.io/namespace=orders (repeatable)',
        collect,
      )
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (rule: string, opts) => {
    const ep = endpoint(opts);
    const headers = { ...adminHeaders(opts), 'content-type': 'application/json' };
    if (opts.issuer) {
      const body = {
        kind: opts.spiffe ? 'spiffe' : 'oidc',
        issuer: opts.issuer,
        ...(opts.discovery ? { discovery: true } : {}),
        ...(opts.jwksUri ? { jwks_uri: opts.jwksUri } : {}),
        ...(opts.jwksFile ? { jwks: JSON.parse(readFileSync(opts.jwksFile, 'utf8')) } : {}),
        ...(opts.alg ? { algorithms: opts.alg } : {}),
        ...(opts.allowPrivateAddresses ? { allow_private_addresses: true } : {}),
        ...(opts.allowHttp ? { allow_http: true } : {}),
        ...(opts.reusable ? { single_use: false } : {}),
      };
      const saved = await show(
        await ep.fetch(`/admin/federation/issuers/${encodeURIComponent(opts.issuerName)}`, {
          method: 'PUT',
          headers,
          body: JSON.stringify(body),
        }),
      );
      if (!saved) return;
    }
    const claims: Record<string, string> = {};
    for (const c of (opts.claim as string[] | undefined) ?? []) {
      const at = c.indexOf('=');
      if (at < 1) throw new Error(`--claim ${c}: expected /pointer=value`);
      claims[c.slice(0, at)] = c.slice(at + 1);
    }
    const saved = await show(
      await ep.fetch(`/admin/federation/rules/${encodeURIComponent(rule)}`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({
          issuer: opts.issuerName,
          client_id: opts.client,
          subject: opts.subject,
          ...(opts.audience ? { audience: opts.audience } : {}),
          claims,
        }),
      }),
    );
    if (saved)
      process.stdout.write(
        `rule ${rule}: tokens of ${opts.issuerName} with sub ${opts.subject} authenticate as ${opts.client}\n`,
      );
  });

  connection(
    federation
      .command('list')
      .description('the trusted issuers and the rules')
      .option('--json', 'as JSON')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const body = (await show(await endpoint(opts).fetch('/admin/federation', { headers: adminHeaders(opts) }))) as
      | {
          issuers: {
            name: string;
            kind: string;
            issuer: string;
            jwks_uri: string | null;
            discovery: boolean;
            single_use: boolean;
          }[];
          rules: {
            name: string;
            issuer: string;
            client_id: string;
            subject: string;
            audience: string | null;
            claims: Record<string, string>;
          }[];
        }
      | undefined;
    if (!body) return;
    if (opts.json) return void process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    for (const i of body.issuers)
      process.stdout.write(
        `issuer ${i.name}\t${i.kind}\t${i.issuer}\t${i.discovery ? 'discovery' : (i.jwks_uri ?? 'inline keys')}${i.single_use ? '' : '\treusable'}\n`,
      );
    for (const r of body.rules)
      process.stdout.write(
        `rule ${r.name}\t${r.issuer}\tsub=${r.subject}${r.audience ? `\taud=${r.audience}` : ''}${Object.entries(
          r.claims,
        )
          .map(([k, v]) => `\t${k}=${v}`)
          .join('')}\t→ ${r.client_id}\n`,
      );
  });

  connection(
    federation
      .command('test <token>')
      .description('which rule a workload token matches, why the others do not, and whether it verifies (not used up)')
      .option('--json', 'as JSON')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (token: string, opts) => {
    const e = (await show(
      await endpoint(opts).fetch('/admin/federation/test', {
        method: 'POST',
        headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
        body: JSON.stringify({ token: token === '-' ? readFileSync(0, 'utf8').trim() : token }),
      }),
    )) as Explanation | undefined;
    if (!e) return;
    if (opts.json) return void process.stdout.write(`${JSON.stringify(e, null, 2)}\n`);
    process.stdout.write(`issuer ${e.issuer ?? '(none)'}, sub ${e.subject ?? '(none)'}\n`);
    for (const c of e.checks)
      process.stdout.write(
        `  ${c.matched ? '✓' : '✗'} rule ${c.rule} → ${c.client_id}${c.matched ? '' : `: ${c.failed.join('; ')}`}\n`,
      );
    process.stdout.write(
      e.match
        ? `matches rule ${e.match.rule}: authenticates as ${e.match.client_id}; ${e.verified ? 'signature, time and audience verify' : `but refused: ${e.error?.reason} (${e.error?.description})`}\n`
        : `no rule matches${e.error ? `: ${e.error.reason} (${e.error.description})` : ''}\n`,
    );
    if (!e.match || !e.verified) process.exitCode = 1;
  });

  connection(
    federation
      .command('remove <name>')
      .description('remove a rule (or, with --issuer, stop trusting an issuer and its rules)')
      .option('--issuer', 'the name is an issuer’s')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (name: string, opts) => {
    const res = await endpoint(opts).fetch(
      `/admin/federation/${opts.issuer ? 'issuers' : 'rules'}/${encodeURIComponent(name)}`,
      { method: 'DELETE', headers: adminHeaders(opts) },
    );
    if (res.status === 204) process.stdout.write(`removed ${opts.issuer ? 'issuer' : 'rule'} ${name}\n`);
    else await show(res);
  });
}
