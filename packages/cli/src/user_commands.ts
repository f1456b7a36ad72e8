import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { adminHeaders, collect, connection, print, show } from './command_helpers.ts';
import { endpoint } from './http_client.ts';

type Opts = Record<string, unknown>;

/** A user as the admin API shows one (the members this command reads). */
interface UserView {
  sub: string;
  username: string;
  email: string | null;
  roles: string[];
  groups: string[];
  disabled: boolean;
  password?: string;
}

/** One admin API call: the parsed body on success; on failure the error is printed and the exit code set. */
async function call<T = UserView>(opts: Opts, path: string, method = 'GET', body?: unknown): Promise<T | undefined> {
  return show(
    await endpoint(opts).fetch(path, {
      method,
      headers: { ...adminHeaders(opts), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  ) as Promise<T | undefined>;
}

const userPath = (user: string, rest = '') => `/admin/users/${encodeURIComponent(user)}${rest}`;

/** A password from standard input (its first line): never a flag, which every user of the machine can read in the process list. */
function passwordFromStdin(): string {
  const line = readFileSync(0, 'utf8').split(/\r?\n/)[0] ?? '';
  if (!line) {
    process.stderr.write('error: --password-stdin read no password\n');
    process.exit(2);
  }
  return line;
}

/** `key=value` pairs: strings with --attr, JSON values with --attr-json. */
function attributes(opts: Opts): Record<string, unknown> | undefined {
  const pairs: [string, unknown][] = [];
  const split = (s: string) => {
    const i = s.indexOf('=');
    if (i < 1) {
      process.stderr.write(`error: expected key=value, got ${s}\n`);
      process.exit(2);
    }
    return [s.slice(0, i), s.slice(i + 1)] as const;
  };
  for (const a of (opts.attr as string[] | undefined) ?? []) pairs.push([...split(a)]);
  for (const a of (opts.attrJson as string[] | undefined) ?? []) {
    const [k, v] = split(a);
    try {
      pairs.push([k, JSON.parse(v)]);
    } catch {
      process.stderr.write(`error: --attr-json ${k}: not JSON\n`);
      process.exit(2);
    }
  }
  return pairs.length > 0 ? Object.fromEntries(pairs) : undefined;
}

const line = (u: UserView) =>
  `${u.sub}\t${u.username}\t${u.email ?? ''}\t${u.roles.join(',')}\t${u.groups.join(',')}${u.disabled ? '\tdisabled' : ''}\n`;

const admin = (cmd: Command) => connection(cmd.option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'));

/** `latchkey user create|list|show|disable|enable|delete|reset-password|roles|groups|attributes|consents` (admin). */
export function registerUserCommands(program: Command): void {
  const user = program.command('user').description('manage users, the people who sign in (admin)');

  admin(
    user
      .command('create <username>')
      .description('create a user; with --generate-password prints the password once')
      .option('--email <address>', 'e-mail address')
      .option('--name <name>', 'display name')
      .option('--role <role>', 'a role: Role::"<role>" is a parent in Cedar (repeatable)', collect)
      .option('--group <group>', 'a group: Group::"<group>" is a parent in Cedar (repeatable)', collect)
      .option('--attr <key=value>', 'a Cedar attribute, a string (repeatable)', collect)
      .option('--attr-json <key=json>', 'a Cedar attribute, any JSON value (repeatable)', collect)
      .option('--password-stdin', 'read the password from standard input')
      .option('--generate-password', 'generate a password, print it once; the user must change it')
      .option('--must-change-password', 'the next login must set a new password'),
  ).action(async (username: string, opts: Opts) => {
    const attrs = attributes(opts);
    const body = await call(opts, '/admin/users', 'POST', {
      username,
      ...(opts.passwordStdin ? { password: passwordFromStdin() } : {}),
      ...(opts.generatePassword ? { generate_password: true } : {}),
      ...(opts.mustChangePassword ? { must_change_password: true } : {}),
      ...(opts.email ? { email: opts.email } : {}),
      ...(opts.name ? { name: opts.name } : {}),
      ...(opts.role ? { roles: opts.role } : {}),
      ...(opts.group ? { groups: opts.group } : {}),
      ...(attrs ? { attributes: attrs } : {}),
    });
    print(body);
  });

  admin(user.command('list').description('list users').option('--limit <n>', 'users per request', '100')).action(
    async (opts: Opts) => {
      let after: string | null = '';
      while (after !== null) {
        const query: string = `?limit=${encodeURIComponent(String(opts.limit))}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
        const page: { users: UserView[]; next: string | null } | undefined = await call(opts, `/admin/users${query}`);
        if (!page) return;
        for (const u of page.users) process.stdout.write(line(u));
        after = page.next;
      }
    },
  );

  admin(user.command('show <user>').description('show a user (by username or sub)')).action(
    async (ref: string, opts: Opts) => print(await call(opts, userPath(ref))),
  );

  for (const [verb, what] of [
    ['disable', 'disable a user and revoke every token they hold'],
    ['enable', 'enable a disabled user'],
  ] as const)
    admin(user.command(`${verb} <user>`).description(what)).action(async (ref: string, opts: Opts) => {
      const body = await call(opts, userPath(ref, `/${verb}`), 'POST', {});
      if (body)
        process.stdout.write(`${verb}d ${body.username}${verb === 'disable' ? '; their tokens are revoked' : ''}\n`);
    });

  admin(user.command('delete <user>').description('delete a user and revoke every token they hold')).action(
    async (ref: string, opts: Opts) => {
      const res = await endpoint(opts).fetch(userPath(ref), { method: 'DELETE', headers: adminHeaders(opts) });
      if (res.status === 204) process.stdout.write(`deleted ${ref}\n`);
      else await show(res);
    },
  );

  admin(
    user
      .command('reset-password <user>')
      .description("set a user's password (from standard input) or generate one; revokes their tokens")
      .option('--password-stdin', 'read the new password from standard input')
      .option('--generate', 'generate one and print it once (the default without --password-stdin)')
      .option('--must-change-password', 'the next login must set a new password (always for a generated one)'),
  ).action(async (ref: string, opts: Opts) => {
    const body = await call(opts, userPath(ref, '/password'), 'POST', {
      ...(opts.passwordStdin ? { password: passwordFromStdin() } : { generate: true }),
      ...(opts.mustChangePassword ? { must_change_password: true } : {}),
    });
    if (!body) return;
    if (body.password) process.stdout.write(`${body.password}\n`);
    else process.stdout.write(`password set for ${body.username}; their tokens are revoked\n`);
  });

  for (const member of ['roles', 'groups'] as const)
    admin(
      user
        .command(`${member} <user>`)
        .description(`show a user's ${member}, or change them (taking one away revokes their tokens)`)
        .option('--set <names>', `replace the ${member} (comma-separated; empty for none)`)
        .option('--add <name>', 'add one (repeatable)', collect)
        .option('--remove <name>', 'remove one (repeatable)', collect),
    ).action(async (ref: string, opts: Opts) => {
      const current = await call(opts, userPath(ref));
      if (!current) return;
      if (opts.set === undefined && !opts.add && !opts.remove) {
        for (const n of current[member]) process.stdout.write(`${n}\n`);
        return;
      }
      let names: string[] = opts.set !== undefined ? String(opts.set).split(',').filter(Boolean) : [...current[member]];
      names = [...names, ...((opts.add as string[]) ?? [])].filter(
        (n) => !((opts.remove as string[]) ?? []).includes(n),
      );
      const body = await call(opts, userPath(current.sub, `/${member}`), 'PUT', { [member]: [...new Set(names)] });
      if (body) for (const n of body[member]) process.stdout.write(`${n}\n`);
    });

  admin(
    user
      .command('attributes <user>')
      .description("show a user's Cedar attributes, or change them (a change revokes their tokens)")
      .option('--attr <key=value>', 'set one, a string (repeatable)', collect)
      .option('--attr-json <key=json>', 'set one, any JSON value (repeatable)', collect)
      .option('--unset <key>', 'remove one (repeatable)', collect),
  ).action(async (ref: string, opts: Opts) => {
    const current = await call<UserView & { attributes: Record<string, unknown> }>(opts, userPath(ref));
    if (!current) return;
    const set = attributes(opts);
    const unset = (opts.unset as string[] | undefined) ?? [];
    let attrs = current.attributes;
    if (set || unset.length > 0) {
      const next = Object.fromEntries(
        Object.entries({ ...current.attributes, ...set }).filter(([k]) => !unset.includes(k)),
      );
      const body = await call<{ attributes: Record<string, unknown> }>(opts, userPath(current.sub), 'PATCH', {
        attributes: next,
      });
      if (!body) return;
      attrs = body.attributes;
    }
    print(attrs);
  });
  admin(
    user
      .command('consents <user>')
      .description(
        "list a user's consents to third-party clients, or withdraw one (revokes that client's tokens for them)",
      )
      .option('--revoke <client_id>', 'withdraw the consent to this client'),
  ).action(async (ref: string, opts: Opts) => {
    if (opts.revoke) {
      const path = userPath(ref, `/consents/${encodeURIComponent(String(opts.revoke))}`);
      const res = await endpoint(opts).fetch(path, { method: 'DELETE', headers: adminHeaders(opts) });
      if (res.status === 204)
        process.stdout.write(`withdrew the consent to ${opts.revoke}; its tokens for ${ref} are revoked\n`);
      else await show(res);
      return;
    }
    const body = await call<{
      consents: { client_id: string; scope: string | null; resource: string[]; updated_at: string }[];
    }>(opts, userPath(ref, '/consents'));
    for (const c of body?.consents ?? [])
      process.stdout.write(`${c.client_id}\t${c.scope ?? ''}\t${c.resource.join(',')}\t${c.updated_at}\n`);
  });
}
