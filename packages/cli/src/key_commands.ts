import type { Command } from 'commander';
import { endpoint } from './http_client.ts';
import { adminHeaders, connection, show } from './command_helpers.ts';

/** `latchkey keys list|rotate|revoke` (admin). */
export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('signing keys: list, rotate, revoke (admin)');

  const printKeys = (body: { keys: Record<string, unknown>[]; next_rotation_at: number | null } | undefined): void => {
    if (!body) return;
    const when = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000).toISOString() : '-');
    process.stdout.write('kid\talg\tstate\tcreated\tactivated\tretired\tremove_after\n');
    for (const k of body.keys) {
      process.stdout.write(
        `${k.kid}\t${k.alg}\t${k.state}\t${when(k.created_at)}\t${when(k.activated_at)}\t${when(k.retired_at)}\t${when(k.remove_after)}\n`,
      );
    }
    if (body.next_rotation_at !== null) process.stdout.write(`next rotation: ${when(body.next_rotation_at)}\n`);
  };

  connection(
    keys
      .command('list')
      .description('list signing keys and their states')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (opts) => {
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

  connection(
    keys
      .command('revoke <kid>')
      .description('revoke a compromised key: removed from the JWKS at once')
      .option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'),
  ).action(async (kid: string, opts) => {
    const res = await endpoint(opts).fetch(`/admin/keys/${encodeURIComponent(kid)}/revoke`, {
      method: 'POST',
      headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
      body: '{}',
    });
    printKeys((await show(res)) as never);
  });
}
