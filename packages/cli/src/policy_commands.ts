import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { splitPolicyFile } from '@latchkey/policy';
import { adminHeaders, connection, print, show } from './command_helpers.ts';
import { endpoint } from './http_client.ts';

interface Problem {
  source: string;
  kind: string;
  message: string;
  help: string | null;
  line?: number;
  column?: number;
}

/** Where each policy id came from, so the IdP's locations (inside one policy) print as file:line:col. */
interface Origin {
  file: string;
  line: number;
  column: number;
}

/**
 * Reads a policy folder as it lives in Git: every `*.cedarschema` is a schema fragment (by file
 * name), every `*.cedar` holds policies (by `@id`, else `<file>#<n>`), and an optional
 * `entities.json` replaces the entity data.
 */
export function readPolicyFolder(dir: string): {
  body: Record<string, unknown>;
  origins: Map<string, Origin>;
  problems: string[];
} {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    return { body: {}, origins: new Map(), problems: [`${dir}: not a folder`] };
  const files = readdirSync(dir).sort();
  const schema: Record<string, string> = {};
  const policies: Record<string, string> = {};
  const origins = new Map<string, Origin>();
  const problems: string[] = [];
  for (const f of files.filter((x) => x.endsWith('.cedarschema'))) schema[f] = readFileSync(join(dir, f), 'utf8');
  for (const f of files.filter((x) => x.endsWith('.cedar'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    const split = splitPolicyFile(f, text);
    for (const e of split.errors)
      problems.push(
        `${join(dir, f)}${e.line ? `:${e.line}:${e.column}` : ''}: ${e.message}${e.help ? ` (${e.help})` : ''}`,
      );
    let from = 0;
    for (const [id, p] of Object.entries(split.policies)) {
      if (policies[id] !== undefined)
        problems.push(`${join(dir, f)}: policy id ${JSON.stringify(id)} is also used in ${origins.get(id)?.file}`);
      policies[id] = p;
      const at = text.indexOf(p, from);
      const before = text.slice(0, Math.max(at, 0)).split('\n');
      origins.set(id, { file: join(dir, f), line: before.length, column: (before.at(-1)?.length ?? 0) + 1 });
      if (at >= 0) from = at + p.length;
    }
  }
  if (Object.keys(schema).length === 0) problems.push(`${dir}: no *.cedarschema file`);
  const body: Record<string, unknown> = { schema, policies };
  const ents = join(dir, 'entities.json');
  if (existsSync(ents)) {
    try {
      body.entities = JSON.parse(readFileSync(ents, 'utf8'));
    } catch (err) {
      problems.push(`${ents}: not JSON (${(err as Error).message})`);
    }
  }
  return { body, origins, problems };
}

/** `file:line:col: message` for each problem the IdP (Cedar) reported. */
function locate(p: Problem, origins: Map<string, Origin>, dir: string): string {
  const o = origins.get(p.source);
  let where =
    p.kind === 'schema'
      ? join(dir, p.source)
      : p.kind === 'entities'
        ? join(dir, 'entities.json')
        : (o?.file ?? p.source);
  if (p.line !== undefined) {
    const line = o && p.kind === 'policy' ? o.line + p.line - 1 : p.line;
    const column = o && p.kind === 'policy' && p.line === 1 ? o.column + (p.column ?? 1) - 1 : (p.column ?? 1);
    where += `:${line}:${column}`;
  }
  return `${where}: ${p.kind === 'policy' && o ? `[${p.source}] ` : ''}${p.message}${p.help ? ` (${p.help})` : ''}`;
}

/** `Service::"orders"`, `Service::orders` or `Orders::Role::"admin"` → { type, id }. */
export function parseUid(s: string): { type: string; id: string } {
  const quoted = /^(.+)::"((?:[^"\\]|\\.)*)"$/.exec(s);
  if (quoted) return { type: quoted[1]!, id: JSON.parse(`"${quoted[2]}"`) as string };
  const i = s.lastIndexOf('::');
  if (i <= 0 || i === s.length - 2) throw new Error(`${s}: expected Type::"id"`);
  return { type: s.slice(0, i), id: s.slice(i + 2) };
}

const entityPath = (u: { type: string; id: string }) =>
  `/admin/policy/entities/${encodeURIComponent(u.type)}/${encodeURIComponent(u.id)}`;

async function submit(
  res: import('undici').Response,
  origins: Map<string, Origin>,
  dir: string,
): Promise<Record<string, unknown> | undefined> {
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown> & {
    errors?: Problem[];
    warnings?: Problem[];
  };
  for (const w of body.warnings ?? []) process.stderr.write(`warning: ${locate(w, origins, dir)}\n`);
  if (body.errors && body.errors.length > 0) {
    for (const e of body.errors) process.stderr.write(`error: ${locate(e, origins, dir)}\n`);
    process.exitCode = 1;
    return undefined;
  }
  if (!res.ok) {
    process.stderr.write(
      `error: HTTP ${res.status} ${String(body.error ?? '')}${body.error_description ? `: ${String(body.error_description)}` : ''}\n`,
    );
    process.exitCode = 1;
    return undefined;
  }
  return body;
}

const published = (r: Record<string, unknown> | undefined): void => {
  if (r)
    process.stdout.write(
      r.unchanged
        ? `unchanged: version ${String(r.version)} is already active\n`
        : `published version ${String(r.version)}\n`,
    );
};

/** `latchkey policy ...`, `latchkey role ...`, `latchkey entity ...`. */
export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('Cedar policies: validate, push, list, diff, roll back (admin)');
  const admin = (cmd: Command) =>
    connection(cmd.option('--admin-token <token>', 'admin bearer (LATCHKEY_ADMIN_TOKEN)'));

  admin(
    policy
      .command('validate <dir>')
      .description('check a policy folder with Cedar at the IdP, without publishing; exit 1 on errors'),
  ).action(async (dir: string, opts) => {
    const { body, origins, problems } = readPolicyFolder(dir);
    if (problems.length > 0) {
      for (const p of problems) process.stderr.write(`error: ${p}\n`);
      process.exitCode = 1;
      return;
    }
    const r = await submit(
      await endpoint(opts).fetch('/admin/policy/validate', {
        method: 'POST',
        headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
      origins,
      dir,
    );
    if (r)
      process.stdout.write(
        `ok: ${Object.keys(body.policies as object).length} policies valid against ${Object.keys(body.schema as object).length} schema fragment(s)\n`,
      );
  });

  admin(
    policy
      .command('push <dir>')
      .description(
        'validate and publish a policy folder (*.cedarschema, *.cedar, optional entities.json) as the next version',
      )
      .option('--note <text>', 'what changed (kept with the version)')
      .option('--expect-version <n>', 'refuse (409) unless this is the active version'),
  ).action(async (dir: string, opts) => {
    const { body, origins, problems } = readPolicyFolder(dir);
    if (problems.length > 0) {
      for (const p of problems) process.stderr.write(`error: ${p}\n`);
      process.exitCode = 1;
      return;
    }
    if (opts.note) body.note = opts.note;
    if (opts.expectVersion !== undefined) body.expected_version = Number(opts.expectVersion);
    published(
      await submit(
        await endpoint(opts).fetch('/admin/policy', {
          method: 'POST',
          headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
        origins,
        dir,
      ),
    );
  });

  admin(policy.command('list').description('published versions, newest (active) first')).action(async (opts) => {
    const r = (await show(await endpoint(opts).fetch('/admin/policy/versions', { headers: adminHeaders(opts) }))) as
      | { versions: { version: number; publishedAt: string; actor: string; note: string | null; digest: string }[] }
      | undefined;
    if (r)
      r.versions.forEach((v, i) =>
        process.stdout.write(
          `${v.version}\t${v.publishedAt}\t${v.actor}\t${v.digest.slice(0, 12)}\t${v.note ?? ''}${i === 0 ? '\t(active)' : ''}\n`,
        ),
      );
  });

  admin(policy.command('show [version]').description('a version (default: the active one) as JSON')).action(
    async (version: string | undefined, opts) => {
      print(
        await show(
          await endpoint(opts).fetch(
            version ? `/admin/policy/versions/${encodeURIComponent(version)}` : '/admin/policy',
            { headers: adminHeaders(opts) },
          ),
        ),
      );
    },
  );

  admin(
    policy.command('diff <from> [to]').description('what changed between two versions (default to: the active one)'),
  ).action(async (from: string, to: string | undefined, opts) => {
    const q = new URLSearchParams({ from, ...(to ? { to } : {}) });
    const r = (await show(await endpoint(opts).fetch(`/admin/policy/diff?${q}`, { headers: adminHeaders(opts) }))) as
      | (Record<string, unknown> &
          Record<'policies' | 'schema' | 'entities', { added: string[]; removed: string[]; changed: string[] }>)
      | undefined;
    if (!r) return;
    process.stdout.write(`version ${String(r.from)} -> ${String(r.to)}\n`);
    for (const part of ['policies', 'schema', 'entities'] as const) {
      for (const [sign, list] of [
        ['+', r[part].added],
        ['-', r[part].removed],
        ['~', r[part].changed],
      ] as const)
        for (const x of list) process.stdout.write(`${sign} ${part}: ${x}\n`);
    }
  });

  admin(
    policy
      .command('rollback <version>')
      .description("publish an earlier version's content again as the newest version"),
  ).action(async (version: string, opts) => {
    published(
      await submit(
        await endpoint(opts).fetch('/admin/policy/rollback', {
          method: 'POST',
          headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
          body: JSON.stringify({ version: Number(version) }),
        }),
        new Map(),
        '.',
      ),
    );
  });

  const role = program
    .command('role')
    .description('roles as Cedar parent entities: RBAC is `principal in Role::"name"` (admin)');
  admin(
    role
      .command('create <name>')
      .description('create Role::"<name>"')
      .option('--type <type>', 'entity type of roles', 'Role'),
  ).action(async (name: string, opts) => {
    published(
      await submit(
        await endpoint(opts).fetch(entityPath({ type: opts.type, id: name }), {
          method: 'PUT',
          headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
          body: '{}',
        }),
        new Map(),
        '.',
      ),
    );
  });
  admin(
    role
      .command('assign <name> <member>')
      .description('make <member> (e.g. Service::"orders", User::"alice", or another role) a member of the role')
      .option('--type <type>', 'entity type of roles', 'Role'),
  ).action(async (name: string, member: string, opts) => {
    const body = JSON.stringify({ parent: { type: opts.type, id: name } });
    published(
      await submit(
        await endpoint(opts).fetch(`${entityPath(parseUid(member))}/parents`, {
          method: 'POST',
          headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
          body,
        }),
        new Map(),
        '.',
      ),
    );
  });
  admin(
    role
      .command('revoke <name> <member>')
      .description('remove <member> from the role')
      .option('--type <type>', 'entity type of roles', 'Role'),
  ).action(async (name: string, member: string, opts) => {
    published(
      await submit(
        await endpoint(opts).fetch(
          `${entityPath(parseUid(member))}/parents/${encodeURIComponent(opts.type)}/${encodeURIComponent(name)}`,
          { method: 'DELETE', headers: adminHeaders(opts) },
        ),
        new Map(),
        '.',
      ),
    );
  });

  const entity = program.command('entity').description('entity data for ABAC: attributes and parents (admin)');
  admin(
    entity
      .command('set <uid>')
      .description(
        'set an entity\'s attributes (JSON object) and/or parents, e.g. entity set Service::"orders" --attrs \'{"tenant":"acme"}\'',
      )
      .option('--attrs <json>', "attributes, in Cedar's JSON value format")
      .option('--parent <uid>', 'a parent (repeatable; replaces the parents)', (v: string, prev: string[] = []) => [
        ...prev,
        v,
      ]),
  ).action(async (uid: string, opts) => {
    const body: Record<string, unknown> = {};
    if (opts.attrs) body.attrs = JSON.parse(opts.attrs);
    if (opts.parent) body.parents = (opts.parent as string[]).map(parseUid);
    published(
      await submit(
        await endpoint(opts).fetch(entityPath(parseUid(uid)), {
          method: 'PUT',
          headers: { ...adminHeaders(opts), 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
        new Map(),
        '.',
      ),
    );
  });
  admin(entity.command('delete <uid>').description('remove an entity and every membership in it')).action(
    async (uid: string, opts) => {
      published(
        await submit(
          await endpoint(opts).fetch(entityPath(parseUid(uid)), { method: 'DELETE', headers: adminHeaders(opts) }),
          new Map(),
          '.',
        ),
      );
    },
  );
}
