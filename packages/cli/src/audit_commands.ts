import { Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { endpoint } from './http_client.ts';
import { adminHeaders, connection, show } from './command_helpers.ts';

/** `latchkey audit verify|search|export|tail|prune|checkpoints|checkpoint` (admin). */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log (admin)');

  connection(
    audit
      .command('verify')
      .description('check the hash chain and signed checkpoints; exit 1 and name the first bad position if broken')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)')
      .option(
        '--checkpoints <file>',
        'also check against checkpoints kept outside the database (LATCHKEY_AUDIT_CHECKPOINT_FILE, or `audit checkpoints --out`)',
      )
      .option(
        '--database <file-or-url>',
        'offline: read a SQLite database file or a PostgreSQL URL directly, no IdP needed',
      )
      .option('--export <file>', 'offline: verify an export (`audit export`) instead')
      .option('--jwks <file>', "offline: the IdP's JWKS (saved from /jwks) to check checkpoint signatures with"),
  ).action(async (opts) => {
    type Report = {
      ok: boolean;
      checked: number;
      head: { seq: number } | null;
      firstBad?: { seq: number; problem: string };
      checkpoints: { total: number; verified: number; unverifiable: number };
      external?: { total: number; verified: number; unverifiable: number };
      keysFrom?: string;
    };
    let r: Report | undefined;
    if (opts.database || opts.export) {
      const { verifyAuditOffline } = await import('@latchkey/server');
      try {
        r = await verifyAuditOffline({
          database: opts.database,
          exportFile: opts.export,
          checkpointsFile: opts.checkpoints,
          jwksFile: opts.jwks,
        });
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
    } else {
      const checkpoints = opts.checkpoints ? readFileSync(opts.checkpoints, 'utf8') : undefined;
      const init =
        checkpoints === undefined
          ? { headers: adminHeaders(opts) }
          : {
              method: 'POST',
              headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
              body: JSON.stringify({ checkpoints: (await import('@latchkey/server')).readCheckpoints(checkpoints) }),
            };
      r = (await show(await endpoint(opts).fetch('/admin/audit/verify', init))) as Report | undefined;
    }
    if (!r) return;
    const count = (c: { total: number; verified: number; unverifiable: number }, what: string) =>
      `${c.verified}/${c.total} ${what} verified${c.unverifiable ? `, ${c.unverifiable} signed by keys not at hand` : ''}`;
    const cps =
      count(r.checkpoints, 'checkpoints') +
      (r.external ? `; ${count(r.external, 'outside checkpoints')}` : '') +
      (r.keysFrom === 'database'
        ? ' (keys from the database itself: pass --jwks for keys it cannot have rewritten)'
        : '');
    if (r.ok) process.stdout.write(`ok: ${r.checked} events chained up to seq ${r.head?.seq ?? 0}; ${cps}\n`);
    else {
      process.stdout.write(
        `BROKEN at seq ${r.firstBad!.seq}: ${r.firstBad!.problem} (${r.checked} events good before it; ${cps})\n`,
      );
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
      .option('--txn <id>', "one transaction: a Transaction Token's txn, across services")
      .option('--since <time>', 'from this RFC 3339 UTC time')
      .option('--until <time>', 'up to this RFC 3339 UTC time')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)');

  /** The query parameters of the filter options. */
  const filterQuery = (opts: Record<string, string | undefined>): URLSearchParams => {
    const q = new URLSearchParams();
    const map: Record<string, string | undefined> = {
      type: opts.type,
      actor: opts.actor,
      subject: opts.subject,
      client_id: opts.client,
      outcome: opts.outcome,
      txn: opts.txn,
      from: opts.since,
      to: opts.until,
    };
    for (const [k, v] of Object.entries(map)) if (v !== undefined) q.set(k, v);
    return q;
  };

  /** Pages through /admin/audit, writing one JSON object per line. */
  async function pageAudit(
    opts: Record<string, string | undefined>,
    write: (line: string) => void,
    max = Infinity,
  ): Promise<void> {
    const ep = endpoint(opts);
    let after = '0';
    let written = 0;
    for (;;) {
      const q = filterQuery(opts);
      q.set('after', after);
      q.set('limit', '1000');
      const page = (await show(await ep.fetch(`/admin/audit?${q}`, { headers: adminHeaders(opts) }))) as
        | { events: unknown[]; cursor: string; has_more: boolean }
        | undefined;
      if (!page) return;
      for (const e of page.events) {
        if (written++ >= max) return;
        write(JSON.stringify(e));
      }
      after = page.cursor;
      if (!page.has_more) return;
    }
  }

  connection(
    auditFilters(
      audit
        .command('search')
        .description('matching events as JSON lines, oldest first')
        .option('--limit <n>', 'at most this many', '100'),
    ),
  ).action(async (opts) => {
    await pageAudit(opts, (l) => process.stdout.write(`${l}\n`), Number(opts.limit));
  });

  connection(
    auditFilters(
      audit
        .command('export')
        .description('every matching event as JSON lines, for any log pipeline')
        .option('--out <file>', 'write to a file instead of stdout'),
    ),
  ).action(async (opts) => {
    const { createWriteStream } = await import('node:fs');
    const out = opts.out ? createWriteStream(opts.out, { flags: 'w', mode: 0o600 }) : process.stdout;
    await pageAudit(opts, (l) => out.write(`${l}\n`));
    if (opts.out) await new Promise<void>((r) => (out as import('node:fs').WriteStream).end(() => r()));
  });

  connection(
    auditFilters(
      audit
        .command('tail')
        .description('the newest matching events as JSON lines; with -f, keep printing new ones as they are committed'),
    )
      .option('-n, --lines <n>', 'how many of the newest to print first', '10')
      .option('-f, --follow', 'keep following')
      .option('--interval <seconds>', 'poll interval while following', '1'),
  ).action(async (opts) => {
    const ep = endpoint(opts);
    const base = filterQuery(opts);
    const first = new URLSearchParams(base);
    first.set('order', 'newest');
    const lines = Number.isInteger(Number(opts.lines)) ? Math.min(Math.max(Number(opts.lines), 0), 1000) : 10;
    // With -n 0 the newest event still gives the cursor to follow from; it is not printed.
    first.set('limit', String(Math.max(lines, 1)));
    let page = (await show(await ep.fetch(`/admin/audit?${first}`, { headers: adminHeaders(opts) }))) as
      | { events: unknown[]; cursor: string; has_more: boolean }
      | undefined;
    if (!page) return;
    for (const e of page.events.slice(page.events.length - lines)) process.stdout.write(`${JSON.stringify(e)}\n`);
    let after = page.cursor;
    if (opts.follow) process.stderr.write(`following after seq ${after}\n`);
    while (opts.follow) {
      const q = new URLSearchParams(base);
      q.set('after', after);
      q.set('limit', '1000');
      page = (await show(await ep.fetch(`/admin/audit?${q}`, { headers: adminHeaders(opts) }))) as typeof page;
      if (!page) return;
      for (const e of page.events) process.stdout.write(`${JSON.stringify(e)}\n`);
      after = page.cursor;
      if (!page.has_more) await new Promise((r) => setTimeout(r, Math.max(Number(opts.interval) || 1, 0.1) * 1000));
    }
  });

  connection(
    audit
      .command('prune')
      .description('delete events recorded before a time, leaving a signed anchor so the rest still verifies')
      .requiredOption('--before <time>', 'RFC 3339 UTC time')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const r = (await show(
      await endpoint(opts).fetch(`/admin/audit/prune?before=${encodeURIComponent(opts.before)}`, {
        method: 'POST',
        headers: adminHeaders(opts),
      }),
    )) as { pruned: number; through_seq: number | null } | undefined;
    if (r)
      process.stdout.write(
        `pruned ${r.pruned} events${r.through_seq !== null ? ` (through seq ${r.through_seq})` : ''}\n`,
      );
  });

  connection(
    audit
      .command('checkpoints')
      .description('export the signed checkpoints as JSON lines (keep them where the database owner cannot write)')
      .option('--out <file>', 'write to a file instead of stdout')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const r = (await show(await endpoint(opts).fetch('/admin/audit/checkpoints', { headers: adminHeaders(opts) }))) as
      | { checkpoints: unknown[] }
      | undefined;
    if (!r) return;
    const text = r.checkpoints.map((c) => `${JSON.stringify(c)}\n`).join('');
    if (opts.out) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(opts.out, text, { mode: 0o600 });
    } else process.stdout.write(text);
  });

  connection(
    audit
      .command('checkpoint')
      .description('sign the chain head now')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const r = (await show(
      await endpoint(opts).fetch('/admin/audit/checkpoints', { method: 'POST', headers: adminHeaders(opts) }),
    )) as { seq: number | null } | undefined;
    if (r) process.stdout.write(`checkpoint at seq ${r.seq ?? 0}\n`);
  });
}
