import type { Command } from 'commander';
import { endpoint } from './http_client.ts';
import { adminHeaders, connection, show } from './command_helpers.ts';

/** `latchkey alerts [-f] [--json] [--open]`, `latchkey alerts --ack <id>` (admin). */
export function registerAlertCommands(program: Command): void {
  connection(
    program
      .command('alerts')
      .description('alerts raised by the detectors, oldest first; with -f, keep printing new ones (admin)')
      .option('--detector <name>', 'only this detector')
      .option('--json', 'one JSON object per line')
      .option('-f, --follow', 'keep following')
      .option('--interval <seconds>', 'poll interval while following', '2')
      .option('--open', 'only alerts not acknowledged yet')
      .option('--ack <id>', 'acknowledge this alert instead of listing')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
    const ep = endpoint(opts);
    if (opts.ack !== undefined) {
      const a = (await show(
        await ep.fetch(`/admin/alerts/${encodeURIComponent(opts.ack)}/acknowledge`, {
          method: 'POST',
          headers: adminHeaders(opts),
        }),
      )) as { id: number; acknowledgedAt: string } | undefined;
      if (a) process.stdout.write(`#${a.id} acknowledged at ${a.acknowledgedAt}\n`);
      return;
    }
    let after = '0';
    for (;;) {
      const q = new URLSearchParams({ after, limit: '1000' });
      if (opts.detector) q.set('detector', opts.detector);
      if (opts.open) q.set('state', 'open');
      const page = (await show(await ep.fetch(`/admin/alerts?${q}`, { headers: adminHeaders(opts) }))) as
        | {
            alerts: {
              id: number;
              time: string;
              detector: string;
              severity: string;
              key: string;
              summary: string;
              response: string | null;
            }[];
            cursor: string;
            has_more: boolean;
          }
        | undefined;
      if (!page) return;
      for (const a of page.alerts) {
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(a)}\n`
            : `#${a.id}\t${a.time}\t${a.severity}\t${a.detector}\t${a.key}\t${a.summary}${a.response ? `\t[${a.response}]` : ''}\n`,
        );
      }
      after = page.cursor;
      if (page.has_more) continue;
      if (!opts.follow) return;
      await new Promise((r) => setTimeout(r, Math.max(Number(opts.interval) || 2, 0.1) * 1000));
    }
  });
}
