#!/usr/bin/env node
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ConfigInput } from '@latchkey/server';
import { endpoint } from './http_client.ts';
import { adminHeaders, collect, connection, print, show } from './command_helpers.ts';
import { registerPolicyCommands } from './policy_commands.ts';
import { registerCaCommands } from './ca_commands.ts';
import { basicAuthorization } from '@latchkey/protocol';

// The package's own version: package.json sits one level above both src/ and dist/.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
const program = new Command('latchkey').description('Latchkey: identity and access management for microservices').version(version).showHelpAfterError();



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
      port: opts.port, host: opts.host, issuer: opts.issuer, dataDir: opts.dataDir, databaseUrl: opts.databaseUrl,
      tls: opts.tls, tlsCert: opts.tlsCert, tlsKey: opts.tlsKey, signingAlg: opts.signingAlg, logLevel: opts.logLevel,
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
    process.stdout.write(`Latchkey IdP listening on ${idp.url} (issuer ${idp.issuer}, ${idp.storage.kind} storage)\n`);
    if (idp.caPem) process.stdout.write(`Local CA certificate: ${config.dataDir}/ca.pem\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(`${signal}: draining for ${config.shutdownGrace}s (readyz says draining), then finishing in-flight requests and flushing audit\n`);
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
    .addOption(new Option('--auth-method <method>', 'token endpoint auth method').choices(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth']))
    .option('--jwks-file <file>', 'public JWK Set for private_key_jwt (or with x5c certificates, for self_signed_tls_client_auth)')
    .option('--jwks-uri <uri>', 'JWK Set URL for private_key_jwt or self_signed_tls_client_auth')
    .option('--bound-tokens', 'every token of this client is bound to its client certificate (RFC 8705 §3)')
    .option('--ttl <seconds>', 'access token lifetime')
    .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
).action(async (clientId: string | undefined, opts) => {
  const body: Record<string, unknown> = {
    client_id: clientId, client_name: opts.name, audiences: opts.audience, default_audience: opts.defaultAudience, scope: opts.scope,
    roles: opts.role, token_endpoint_auth_method: opts.authMethod, jwks_uri: opts.jwksUri,
    jwks: opts.jwksFile ? JSON.parse(readFileSync(opts.jwksFile, 'utf8')) : undefined,
    access_token_ttl: opts.ttl !== undefined ? Number(opts.ttl) : undefined,
    tls_client_certificate_bound_access_tokens: opts.boundTokens ? true : undefined,
  };
  const ep = endpoint(opts);
  print(await show(await ep.fetch('/register', { method: 'POST', headers: { ...adminHeaders(opts), 'content-type': 'application/json' }, body: JSON.stringify(body) })));
});

connection(client.command('list').description('list clients').option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (opts) => {
  const body = (await show(await endpoint(opts).fetch('/admin/clients', { headers: adminHeaders(opts) }))) as { clients: Record<string, unknown>[] } | undefined;
  if (body) for (const c of body.clients) process.stdout.write(`${c.client_id}\t${c.client_name ?? ''}\t${(c.audiences as string[]).join(',')}\t${c.token_endpoint_auth_method}${c.disabled ? '\tdisabled' : ''}\n`);
});

connection(client.command('show <client_id>').description('show one client').option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (id: string, opts) => {
  print(await show(await endpoint(opts).fetch(`/admin/clients/${encodeURIComponent(id)}`, { headers: adminHeaders(opts) })));
});

connection(client.command('delete <client_id>').description('delete a client').option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (id: string, opts) => {
  const res = await endpoint(opts).fetch(`/admin/clients/${encodeURIComponent(id)}`, { method: 'DELETE', headers: adminHeaders(opts) });
  if (res.status === 204) process.stdout.write(`deleted ${id}\n`);
  else await show(res);
});

const keys = program.command('keys').description('signing keys: list, rotate, revoke (admin)');

const printKeys = (body: { keys: Record<string, unknown>[]; next_rotation_at: number | null } | undefined): void => {
  if (!body) return;
  const when = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000).toISOString() : '-');
  process.stdout.write('kid\talg\tstate\tcreated\tactivated\tretired\tremove_after\n');
  for (const k of body.keys) {
    process.stdout.write(`${k.kid}\t${k.alg}\t${k.state}\t${when(k.created_at)}\t${when(k.activated_at)}\t${when(k.retired_at)}\t${when(k.remove_after)}\n`);
  }
  if (body.next_rotation_at !== null) process.stdout.write(`next rotation: ${when(body.next_rotation_at)}\n`);
};

connection(keys.command('list').description('list signing keys and their states').option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (opts) => {
  printKeys((await show(await endpoint(opts).fetch('/admin/keys', { headers: adminHeaders(opts) }))) as never);
});

connection(
  keys
    .command('rotate')
    .description('bring the rotation forward: the next key signs once it has been announced for the full window')
    .option('--now', 'promote the next key at once, without waiting for the announce window')
    .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
).action(async (opts) => {
  const res = await endpoint(opts).fetch('/admin/keys/rotate', {
    method: 'POST',
    headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
    body: JSON.stringify({ now: opts.now === true }),
  });
  printKeys((await show(res)) as never);
});

connection(keys.command('revoke <kid>').description('revoke a compromised key: removed from the JWKS at once').option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (kid: string, opts) => {
  const res = await endpoint(opts).fetch(`/admin/keys/${encodeURIComponent(kid)}/revoke`, { method: 'POST', headers: { ...adminHeaders(opts), 'content-type': 'application/json' }, body: '{}' });
  printKeys((await show(res)) as never);
});

connection(client.command('revoke <client_id>').description('disable a client and revoke every token it holds').option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (id: string, opts) => {
  const body = await show(await endpoint(opts).fetch(`/admin/clients/${encodeURIComponent(id)}/revoke`, { method: 'POST', headers: { ...adminHeaders(opts), 'content-type': 'application/json' }, body: '{}' }));
  if (body) process.stdout.write(`revoked ${id}: disabled, and its tokens issued until now are revoked\n`);
});

const audit = program.command('audit').description('the tamper-evident audit log (admin)');

connection(audit.command('verify')
  .description('check the hash chain and signed checkpoints; exit 1 and name the first bad position if broken')
  .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')
  .option('--checkpoints <file>', 'also check against checkpoints kept outside the database (LATCHKEY_AUDIT_CHECKPOINT_FILE, or `audit checkpoints --out`)')
  .option('--database <file-or-url>', 'offline: read a SQLite database file or a PostgreSQL URL directly, no IdP needed')
  .option('--export <file>', 'offline: verify an export (`audit export`) instead')
  .option('--jwks <file>', 'offline: the IdP\'s JWKS (saved from /jwks) to check checkpoint signatures with')).action(async (opts) => {
  type Report = { ok: boolean; checked: number; head: { seq: number } | null; firstBad?: { seq: number; problem: string }; checkpoints: { total: number; verified: number; unverifiable: number }; external?: { total: number; verified: number; unverifiable: number }; keysFrom?: string };
  let r: Report | undefined;
  if (opts.database || opts.export) {
    const { verifyAuditOffline } = await import('@latchkey/server');
    try {
      r = await verifyAuditOffline({ database: opts.database, exportFile: opts.export, checkpointsFile: opts.checkpoints, jwksFile: opts.jwks });
    } catch (err) {
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = 2;
      return;
    }
  } else {
    const checkpoints = opts.checkpoints ? readFileSync(opts.checkpoints, 'utf8') : undefined;
    const init = checkpoints === undefined
      ? { headers: adminHeaders(opts) }
      : { method: 'POST', headers: { ...adminHeaders(opts), 'content-type': 'application/json' }, body: JSON.stringify({ checkpoints: (await import('@latchkey/server')).readCheckpoints(checkpoints) }) };
    r = (await show(await endpoint(opts).fetch('/admin/audit/verify', init))) as Report | undefined;
  }
  if (!r) return;
  const count = (c: { total: number; verified: number; unverifiable: number }, what: string) =>
    `${c.verified}/${c.total} ${what} verified${c.unverifiable ? `, ${c.unverifiable} signed by keys not at hand` : ''}`;
  const cps = count(r.checkpoints, 'checkpoints') + (r.external ? `; ${count(r.external, 'outside checkpoints')}` : '') + (r.keysFrom === 'database' ? ' (keys from the database itself: pass --jwks for keys it cannot have rewritten)' : '');
  if (r.ok) process.stdout.write(`ok: ${r.checked} events chained up to seq ${r.head?.seq ?? 0}; ${cps}\n`);
  else {
    process.stdout.write(`BROKEN at seq ${r.firstBad!.seq}: ${r.firstBad!.problem} (${r.checked} events good before it; ${cps})\n`);
    process.exitCode = 1;
  }
});

const auditFilters = (cmd: Command): Command =>
  cmd
    .option('--type <type>', 'event type, e.g. token.issued')
    .option('--actor <actor>', 'who acted')
    .option('--subject <subject>', 'whom it is about')
    .option('--client <client_id>', 'client id')
    .addOption(new Option('--outcome <outcome>', 'outcome').choices(['success', 'failure']))
    .option('--since <time>', 'from this RFC 3339 UTC time')
    .option('--until <time>', 'up to this RFC 3339 UTC time')
    .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)');

/** Pages through /admin/audit, writing one JSON object per line. */
async function pageAudit(opts: Record<string, string | undefined>, write: (line: string) => void, max = Infinity): Promise<void> {
  const ep = endpoint(opts);
  let after = '0';
  let written = 0;
  for (;;) {
    const q = new URLSearchParams({ after, limit: '1000' });
    const map: Record<string, string | undefined> = { type: opts.type, actor: opts.actor, subject: opts.subject, client_id: opts.client, outcome: opts.outcome, from: opts.since, to: opts.until };
    for (const [k, v] of Object.entries(map)) if (v !== undefined) q.set(k, v);
    const page = (await show(await ep.fetch(`/admin/audit?${q}`, { headers: adminHeaders(opts) }))) as { events: unknown[]; cursor: string; has_more: boolean } | undefined;
    if (!page) return;
    for (const e of page.events) {
      if (written++ >= max) return;
      write(JSON.stringify(e));
    }
    after = page.cursor;
    if (!page.has_more) return;
  }
}

connection(auditFilters(audit.command('search').description('matching events as JSON lines, oldest first').option('--limit <n>', 'at most this many', '100'))).action(async (opts) => {
  await pageAudit(opts, (l) => process.stdout.write(l + '\n'), Number(opts.limit));
});

connection(auditFilters(audit.command('export').description('every matching event as JSON lines, for any log pipeline').option('--out <file>', 'write to a file instead of stdout'))).action(async (opts) => {
  const { createWriteStream } = await import('node:fs');
  const out = opts.out ? createWriteStream(opts.out, { flags: 'w', mode: 0o600 }) : process.stdout;
  await pageAudit(opts, (l) => out.write(l + '\n'));
  if (opts.out) await new Promise<void>((r) => (out as import('node:fs').WriteStream).end(() => r()));
});

connection(auditFilters(audit.command('tail').description('the newest matching events as JSON lines; with -f, keep printing new ones as they are committed'))
  .option('-n, --lines <n>', 'how many of the newest to print first', '10')
  .option('-f, --follow', 'keep following')
  .option('--interval <seconds>', 'poll interval while following', '1')).action(async (opts) => {
  const ep = endpoint(opts);
  const base = new URLSearchParams();
  const map: Record<string, string | undefined> = { type: opts.type, actor: opts.actor, subject: opts.subject, client_id: opts.client, outcome: opts.outcome, from: opts.since, to: opts.until };
  for (const [k, v] of Object.entries(map)) if (v !== undefined) base.set(k, v);
  const first = new URLSearchParams(base);
  first.set('order', 'newest');
  const lines = Number.isInteger(Number(opts.lines)) ? Math.min(Math.max(Number(opts.lines), 0), 1000) : 10;
  // With -n 0 the newest event still gives the cursor to follow from; it is not printed.
  first.set('limit', String(Math.max(lines, 1)));
  let page = (await show(await ep.fetch(`/admin/audit?${first}`, { headers: adminHeaders(opts) }))) as { events: unknown[]; cursor: string; has_more: boolean } | undefined;
  if (!page) return;
  for (const e of page.events.slice(page.events.length - lines)) process.stdout.write(JSON.stringify(e) + '\n');
  let after = page.cursor;
  if (opts.follow) process.stderr.write(`following after seq ${after}\n`);
  while (opts.follow) {
    const q = new URLSearchParams(base);
    q.set('after', after);
    q.set('limit', '1000');
    page = (await show(await ep.fetch(`/admin/audit?${q}`, { headers: adminHeaders(opts) }))) as typeof page;
    if (!page) return;
    for (const e of page.events) process.stdout.write(JSON.stringify(e) + '\n');
    after = page.cursor;
    if (!page.has_more) await new Promise((r) => setTimeout(r, Math.max(Number(opts.interval) || 1, 0.1) * 1000));
  }
});

connection(audit.command('prune').description('delete events recorded before a time, leaving a signed anchor so the rest still verifies')
  .requiredOption('--before <time>', 'RFC 3339 UTC time')
  .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (opts) => {
  const r = (await show(await endpoint(opts).fetch(`/admin/audit/prune?before=${encodeURIComponent(opts.before)}`, { method: 'POST', headers: adminHeaders(opts) }))) as { pruned: number; through_seq: number | null } | undefined;
  if (r) process.stdout.write(`pruned ${r.pruned} events${r.through_seq !== null ? ` (through seq ${r.through_seq})` : ''}\n`);
});

connection(program.command('alerts').description('alerts raised by the detectors, oldest first; with -f, keep printing new ones (admin)')
  .option('--detector <name>', 'only this detector')
  .option('--json', 'one JSON object per line')
  .option('-f, --follow', 'keep following')
  .option('--interval <seconds>', 'poll interval while following', '2')
  .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (opts) => {
  const ep = endpoint(opts);
  let after = '0';
  for (;;) {
    const q = new URLSearchParams({ after, limit: '1000' });
    if (opts.detector) q.set('detector', opts.detector);
    const page = (await show(await ep.fetch(`/admin/alerts?${q}`, { headers: adminHeaders(opts) }))) as
      | { alerts: { id: number; time: string; detector: string; severity: string; key: string; summary: string; response: string | null }[]; cursor: string; has_more: boolean }
      | undefined;
    if (!page) return;
    for (const a of page.alerts) {
      process.stdout.write(opts.json ? JSON.stringify(a) + '\n' : `#${a.id}\t${a.time}\t${a.severity}\t${a.detector}\t${a.key}\t${a.summary}${a.response ? `\t[${a.response}]` : ''}\n`);
    }
    after = page.cursor;
    if (page.has_more) continue;
    if (!opts.follow) return;
    await new Promise((r) => setTimeout(r, Math.max(Number(opts.interval) || 2, 0.1) * 1000));
  }
});

connection(client.command('unlock <client_id>').description('lift a lock that a detector response put on a client').option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (id: string, opts) => {
  const r = await show(await endpoint(opts).fetch(`/admin/clients/${encodeURIComponent(id)}/unlock`, { method: 'POST', headers: adminHeaders(opts) }));
  if (r) process.stdout.write(`unlocked ${id}\n`);
});

connection(audit.command('checkpoints').description('export the signed checkpoints as JSON lines (keep them where the database owner cannot write)')
  .option('--out <file>', 'write to a file instead of stdout')
  .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (opts) => {
  const r = (await show(await endpoint(opts).fetch('/admin/audit/checkpoints', { headers: adminHeaders(opts) }))) as { checkpoints: unknown[] } | undefined;
  if (!r) return;
  const text = r.checkpoints.map((c) => JSON.stringify(c) + '\n').join('');
  if (opts.out) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(opts.out, text, { mode: 0o600 });
  } else process.stdout.write(text);
});

connection(audit.command('checkpoint').description('sign the chain head now').option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')).action(async (opts) => {
  const r = (await show(await endpoint(opts).fetch('/admin/audit/checkpoints', { method: 'POST', headers: adminHeaders(opts) }))) as { seq: number | null } | undefined;
  if (r) process.stdout.write(`checkpoint at seq ${r.seq ?? 0}\n`);
});

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
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuthorization(opts.clientId, secret) },
    body: form.toString(),
  });
  const body = (await show(res)) as { access_token: string } | undefined;
  if (!body) return;
  if (!opts.decode) {
    process.stdout.write(body.access_token + '\n');
    return;
  }
  const [h, p] = body.access_token.split('.');
  print({ header: JSON.parse(Buffer.from(h as string, 'base64url').toString()), claims: JSON.parse(Buffer.from(p as string, 'base64url').toString()), bytes: body.access_token.length });
});

registerPolicyCommands(program);
registerCaCommands(program);

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`latchkey: ${err.message}\n`);
  process.exit(1);
});
