import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI_MAIN, TSX } from '@latchkey/testkit';
import { stringify } from 'yaml';
import { loadSidecarConfig, SIDECAR_ERROR_CODES, SidecarError } from '../src/index.ts';
import { sidecarSchemaText } from '../../../scripts/docs.ts';
import { type Estate, startEstate } from './sidecar_fixture.ts';

const SIDECAR_MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const DOCS = fileURLToPath(new URL('../../../docs/sidecar.md', import.meta.url));

describe('sidecar configuration', () => {
  let dir: string;
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const problems = (file: string, env: NodeJS.ProcessEnv = {}): string => {
    try {
      loadSidecarConfig(file, env);
    } catch (err) {
      assert.ok(err instanceof SidecarError);
      assert.equal(err.code, 'config_invalid');
      return err.message;
    }
    assert.fail('the configuration was accepted');
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-sidecar-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the example of docs/sidecar.md loads, with defaults filled in and environment overrides applied', () => {
    const yaml = /```yaml\n(idp:[\s\S]*?)```/.exec(readFileSync(DOCS, 'utf8'))?.[1];
    assert.ok(yaml, 'docs/sidecar.md has the example');
    const config = loadSidecarConfig(write('example.yaml', yaml), {
      LATCHKEY_SIDECAR_CLIENT_SECRET: 's3cret',
      LATCHKEY_SIDECAR_PROXY_PORT: '18080',
    });
    assert.equal(config.idp.client_secret, 's3cret');
    assert.equal(config.proxy?.listen.port, 18080);
    assert.equal(config.unmatched, 'deny');
    assert.equal(config.proxy?.body_limit, 10 * 1024 * 1024);
    assert.equal(config.forward_auth.path, '/auth');
    assert.equal(config.routes.length, 3);
    // Decision audit at volume: allows past 100/s counted per 10 s, decisions never dropped.
    assert.deepEqual(config.audit, { allow_rate: 100, aggregate_interval: 10, max_queue: 10_000 });
    // The same file as JSON.
    const json = loadSidecarConfig(write('example.json', JSON.stringify(config)), {});
    assert.deepEqual(json, config);
  });

  test('every problem at once, with file, line and path; secrets never echoed', () => {
    const file = write(
      'bad.yaml',
      `idp:
  issuer: ftp://idp
  client_id: orders
  client_secret: 123456789
audience: https://orders.internal
routes:
  - methods: GET
    path: no-slash
  - methods: GET
    path: /x
    auth: sometimes
proxy:
  listen: { port: 99999 }
  upstream: http://127.0.0.1:9000
surprise: true
`,
    );
    const message = problems(file);
    assert.match(message, new RegExp(`${file}:2: idp/issuer: .*\\(got "ftp://idp"\\)`));
    assert.match(message, new RegExp(`${file}:8: routes/0/path: `));
    assert.match(message, /routes\/1\/auth: /);
    assert.match(message, /proxy\/listen\/port: .*\(got 99999\)/);
    assert.match(message, /idp\/client_secret: /);
    assert.doesNotMatch(message, /123456789/, 'a secret is never echoed');
    assert.match(message, new RegExp(`${file}:15: surprise: `), 'an unknown member, at its line');
  });

  test('malformed YAML, repeated keys, bad overrides, rules between members, nothing to serve', () => {
    assert.match(problems(write('broken.yaml', 'idp: [unclosed\n')), /broken.yaml:\d+:\d+: /);
    assert.match(
      problems(write('twice.yaml', 'audience: a\naudience: b\n')),
      /twice.yaml:2:\d+: .*[Mm]ap keys must be unique/,
    );
    const minimal = {
      idp: { issuer: 'https://idp', client_id: 'orders' },
      audience: 'https://orders.internal',
      listen: { port: 0 },
    };
    assert.match(
      problems(write('port.yaml', stringify(minimal)), { LATCHKEY_SIDECAR_PORT: 'eighty' }),
      /LATCHKEY_SIDECAR_PORT: expected a whole number/,
    );
    const actionless = {
      ...minimal,
      routes: [{ methods: 'GET', path: '/a', resource: { type: 'T', id: { value: 'x' } } }],
    };
    assert.match(problems(write('rules.yaml', stringify(actionless))), /routes\/0: a resource needs an action/);
    const twice = {
      ...minimal,
      routes: [
        { methods: 'GET', path: '/a' },
        { methods: ['GET'], path: '/a' },
      ],
    };
    assert.match(problems(write('dup.yaml', stringify(twice))), /routes\/1: /);
    const { listen: _, ...idle } = minimal;
    assert.match(problems(write('idle.yaml', stringify(idle))), /nothing to serve/);
    assert.match(problems(join(dir, 'missing.yaml')), /cannot be read \(ENOENT\)/);
    const withPassword = { ...minimal, idp: { ...minimal.idp, issuer: 'ftp://svc:hunter2@idp' } };
    const redacted = problems(write('password.yaml', stringify(withPassword)));
    assert.match(redacted, /idp\/issuer: .*ftp:\/\/\*\*\*@idp/);
    assert.doesNotMatch(redacted, /hunter2/);
  });

  test('packages/sidecar/sidecar.schema.json is the schema the loader checks (npm run docs writes it)', () => {
    const committed = readFileSync(fileURLToPath(new URL('../sidecar.schema.json', import.meta.url)), 'utf8');
    assert.equal(committed, sidecarSchemaText(), 'run `npm run docs`');
    const schema = JSON.parse(committed) as { required: string[] };
    assert.deepEqual(schema.required, ['idp', 'audience'], 'members with defaults are optional in a file');
  });
});

test('docs/errors.md lists exactly the sidecar error codes', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Sidecar error codes'));
  const end = section.indexOf('\n## ', 3);
  const table = end < 0 ? section : section.slice(0, end);
  const codes = [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(codes.sort(), [...SIDECAR_ERROR_CODES].sort());
});

describe('latchkey-sidecar and latchkey sidecar, the commands', () => {
  let e: Estate;
  before(async () => {
    e = await startEstate();
  });
  after(async () => {
    await e?.close();
  });

  for (const [name, args] of [
    ['latchkey-sidecar', [SIDECAR_MAIN]],
    ['latchkey sidecar', [CLI_MAIN, 'sidecar']],
  ] as const) {
    test(`${name}: starts from the file, says ready, serves, and drains on SIGTERM`, async () => {
      const config = join(e.dir, `${name.replace(' ', '-')}.yaml`);
      writeFileSync(config, readFileSync(e.configFile, 'utf8').replace(/ext_authz:[\s\S]*?port: 0\n/, ''));
      const child = spawn(TSX, [...args, '--config', config], {
        env: { ...process.env, LATCHKEY_SIDECAR_CLIENT_SECRET: e.service.client_secret },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      const ready = await new Promise<{ proxy: string; api: string }>((resolve, reject) => {
        child.stdout?.on('data', (b: Buffer) => {
          out += b.toString();
          const line = out.split('\n').find((l) => l.includes('latchkey-sidecar ready'));
          if (line) resolve(JSON.parse(line));
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const token = await e.token('checkout');
      const r = await fetch(`${ready.proxy}/tenants/acme/orders/1`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
      assert.equal((await fetch(`${ready.api}/readyz`)).status, 200);
      // A token put in a URL by mistake never reaches the log; the request is logged by path.
      await fetch(`${ready.proxy}/tenants/acme/orders/1?access_token=leaked-in-a-url`);
      await new Promise((r) => setTimeout(r, 200));
      assert.match(out, /"path":"\/tenants\/acme\/orders\/1"/);
      assert.doesNotMatch(out, /leaked-in-a-url/);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    });
  }

  test('a configuration error exits 2 and names the problem', () => {
    const bad = join(e.dir, 'bad-command.yaml');
    writeFileSync(bad, 'idp: {}\n');
    const r = spawnSync(TSX, [SIDECAR_MAIN, '--config', bad], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /latchkey-sidecar: config_invalid: configuration is invalid:\n.*idp\/issuer|audience/);
  });
});
