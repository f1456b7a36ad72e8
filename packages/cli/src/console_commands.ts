import type { Command } from 'commander';
import { endpoint } from './http_client.ts';
import { adminHeaders, connection, show } from './command_helpers.ts';

/** `latchkey console link` (admin): a one-time sign-in link to the admin console. */
export function registerConsoleCommands(program: Command): void {
  const consoleCmd = program.command('console').description('the admin console at /console/ (admin)');
  connection(
    consoleCmd
      .command('link')
      .description('print a one-time sign-in link to the console (usable once, for 10 minutes)')
      .option('--json', 'the answer as JSON')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const body = (await show(
      await endpoint(opts).fetch('/admin/console/links', { method: 'POST', headers: adminHeaders(opts) }),
    )) as { url: string; expires_at: number } | undefined;
    if (!body) return;
    process.stdout.write(
      opts.json
        ? `${JSON.stringify(body)}\n`
        : `${body.url}\n(one use, until ${new Date(body.expires_at * 1000).toISOString()})\n`,
    );
  });
}
