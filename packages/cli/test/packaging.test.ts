// Issue 12: the packages as a user outside this repository gets them. Build, `npm pack` every
// package, install the tarballs into a scratch project in the temp folder (no workspace links, no
// tsx, no source condition), and use them there from plain JavaScript, CommonJS and TypeScript.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { freePort, tlsFetch } from '@latchkey/testkit';

const exec = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;
const PACKAGES = ['protocol', 'policy', 'server', 'sdk', 'sidecar', 'cli'];
// A clean environment for the consumer: none of this repository's loaders or conditions.
const env = (extra: Record<string, string> = {}) => {
  const e: Record<string, string> = { ...process.env, ...extra } as Record<string, string>;
  delete e.NODE_OPTIONS;
  return e;
};

/** Packs every package into `dir` and returns the tarball paths. */
async function packAll(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  mkdirSync(dir, { recursive: true });
  for (const p of PACKAGES) {
    const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: join(ROOT, 'packages', p),
      env: env(),
    });
    out[p] = join(dir, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
  }
  return out;
}

/** A consumer project in `app` with every @latchkey package from its tarball (the registry has none). */
async function installConsumer(
  app: string,
  tarballs: Record<string, string>,
  extraEnv: Record<string, string> = {},
  devDependencies: Record<string, string> = {},
): Promise<void> {
  mkdirSync(app, { recursive: true });
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify(
      {
        name: 'consumer',
        version: '1.0.0',
        private: true,
        type: 'module',
        dependencies: Object.fromEntries(PACKAGES.map((p) => [`@latchkey/${p}`, `file:${tarballs[p]}`])),
        overrides: Object.fromEntries(PACKAGES.map((p) => [`@latchkey/${p}`, `file:${tarballs[p]}`])),
        devDependencies,
        allowScripts: { 'better-sqlite3': true },
      },
      null,
      2,
    ),
  );
  await exec('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: app,
    env: env(extraEnv),
    maxBuffer: 1 << 24,
  });
}

/** Starts the installed `latchkey serve` and registers a client with the installed `latchkey client create`. */
async function serveAndRegister(
  app: string,
  runEnv: Record<string, string>,
): Promise<{
  server: ReturnType<typeof spawn>;
  issuer: string;
  secret: string;
  caPem: string;
  cliMs: number;
  adminToken: string;
  data: string;
}> {
  const bin = join(app, 'node_modules', '.bin', 'latchkey');
  const port = await freePort();
  const data = join(app, 'data');
  const issuer = `https://localhost:${port}`;
  const server = spawn(bin, ['serve'], {
    env: env({
      ...runEnv,
      LATCHKEY_DATA_DIR: data,
      LATCHKEY_PORT: String(port),
      LATCHKEY_LOG_LEVEL: 'warn',
      LATCHKEY_SHUTDOWN_GRACE: '0',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  server.stdout!.on('data', (d) => (out += d));
  server.stderr!.on('data', (d) => (out += d));
  for (let i = 0; i < 300 && !out.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(out, /listening on/, out);
  const adminToken = /LATCHKEY_ADMIN_TOKEN=(\S+)/.exec(out)![1]!;
  const started = Date.now();
  const created = await exec(
    bin,
    ['client', 'create', 'consumer-svc', '--audience', 'https://orders.internal', '--scope', 'orders:read'],
    {
      env: env({ ...runEnv, LATCHKEY_URL: issuer, LATCHKEY_DATA_DIR: data, LATCHKEY_ADMIN_TOKEN: adminToken }),
    },
  );
  const cliMs = Date.now() - started;
  return {
    server,
    issuer,
    secret: (JSON.parse(created.stdout) as { client_secret: string }).client_secret,
    caPem: join(data, 'ca.pem'),
    cliMs,
    adminToken,
    data,
  };
}

const consumerCode = (mod: 'esm' | 'cjs') => {
  const load =
    mod === 'esm'
      ? "import { createTokenClient } from '@latchkey/sdk/token-client';\nimport { createVerifier } from '@latchkey/sdk/verify';\n"
      : "const { createTokenClient } = require('@latchkey/sdk/token-client');\nconst { createVerifier } = require('@latchkey/sdk/verify');\n";
  return `${load}
const issuer = process.env.ISSUER;
const main = async () => {
  const tokens = createTokenClient({ issuer, clientId: 'consumer-svc', clientSecret: process.env.SECRET });
  const token = await tokens.getToken({ audience: 'https://orders.internal' });
  const verifier = await createVerifier({ issuer, audience: 'https://orders.internal' });
  const claims = await verifier.verify(token);
  verifier.close();
  console.log(JSON.stringify({ client_id: claims.client_id, scope: claims.scope, node: process.version }));
};
main().catch((err) => { console.error(err); process.exit(1); });
`;
};

/** Runs the .mjs or .cjs consumer with `nodeBin`; returns what it printed. */
async function runConsumer(
  app: string,
  mod: 'esm' | 'cjs',
  nodeBin: string,
  s: { issuer: string; secret: string; caPem: string },
): Promise<{ client_id: string; scope: string; node: string }> {
  const file = join(app, mod === 'esm' ? 'consumer.mjs' : 'consumer.cjs');
  writeFileSync(file, consumerCode(mod));
  const { stdout } = await exec(nodeBin, [file], {
    cwd: app,
    env: env({ ISSUER: s.issuer, SECRET: s.secret, NODE_EXTRA_CA_CERTS: s.caPem }),
  });
  return JSON.parse(stdout) as { client_id: string; scope: string; node: string };
}

describe('installable packages: npm pack, install outside the repository, use without tsx', {
  timeout: 600_000,
}, () => {
  let scratch: string;
  let app: string;
  const tarballs: Record<string, string> = {};
  let server: ReturnType<typeof spawn> | undefined;

  before(async () => {
    await exec('npm', ['run', 'build'], { cwd: ROOT, env: env() });
    scratch = mkdtempSync(join(tmpdir(), 'latchkey-consumer-'));
    Object.assign(tarballs, await packAll(join(scratch, 'tarballs')));
    app = join(scratch, 'app');
    // The framework peers too, so the TypeScript consumer can check the middleware subpaths.
    await installConsumer(
      app,
      tarballs,
      {},
      {
        typescript: '5.9',
        '@types/node': '^20.19.0',
        fastify: '^5.0.0',
        express: '^5.0.0',
        '@types/express': '^5.0.0',
        // The optional peer of @latchkey/sdk/metrics.
        'prom-client': '^15.1.3',
      },
    );
  });
  after(async () => {
    server?.kill('SIGTERM');
  });

  test('npm pack ships built JavaScript and declarations only: no tests, no benchmarks, no TypeScript sources', async () => {
    for (const p of PACKAGES) {
      const { stdout } = await exec('npm', ['pack', '--dry-run', '--json'], {
        cwd: join(ROOT, 'packages', p),
        env: env(),
      });
      const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
      assert.ok(files.includes('package.json') && files.some((f) => f.startsWith('dist/') && f.endsWith('.js')), p);
      const stray = files.filter(
        (f) =>
          /(^|\/)(test|tests|bench)\//.test(f) ||
          (f.endsWith('.ts') && !f.endsWith('.d.ts')) ||
          f.endsWith('.tsbuildinfo'),
      );
      assert.deepEqual(stray, [], `${p} ships ${stray.join(', ')}`);
      // The server ships the admin console compiled (no sources, no build step at the user's).
      if (p === 'server') {
        assert.ok(files.includes('console-dist/index.html'), 'server ships console-dist/index.html');
        assert.ok(files.some((f) => /^console-dist\/assets\/console-\w+\.js$/.test(f)));
        assert.ok(!files.some((f) => f.startsWith('console/')), 'no console sources');
      }
    }
  });

  let issuer: string;
  let secret: string;
  let caPem: string;
  let adminToken: string;
  let data: string;
  test('the installed `latchkey` binary: --version, serve, client create', async () => {
    const version = (
      await exec(join(app, 'node_modules', '.bin', 'latchkey'), ['--version'], { env: env() })
    ).stdout.trim();
    assert.equal(version, JSON.parse(readFileSync(join(ROOT, 'packages/cli/package.json'), 'utf8')).version);
    const r = await serveAndRegister(app, {});
    server = r.server;
    ({ issuer, secret, caPem, adminToken, data } = r);
    assert.ok(secret.length >= 43);
    assert.ok(r.cliMs < 5000, `the compiled CLI took ${r.cliMs} ms`);
    // The installed IdP serves its console from the package.
    const page = await tlsFetch(readFileSync(caPem, 'utf8'))(`${issuer}/console/`);
    assert.equal(page.status, 200);
    const js = /src="assets\/([^"]+)"/.exec(await page.text())?.[1];
    assert.equal((await tlsFetch(readFileSync(caPem, 'utf8'))(`${issuer}/console/assets/${js}`)).status, 200);
  });

  for (const mod of ['esm', 'cjs'] as const) {
    test(`a plain ${mod === 'esm' ? '.mjs (import)' : '.cjs (require)'} file gets a token with @latchkey/sdk/token-client and verifies it with @latchkey/sdk/verify`, async () => {
      assert.deepEqual(await runConsumer(app, mod, process.execPath, { issuer, secret, caPem }), {
        client_id: 'consumer-svc',
        scope: 'orders:read',
        node: process.version,
      });
    });
  }

  for (const resolution of ['NodeNext', 'Bundler'] as const) {
    test(`a TypeScript consumer (tsc --strict, moduleResolution ${resolution}) type-checks a correct use and fails on a misspelt option`, async () => {
      const dir = join(app, `ts-${resolution}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target: 'ES2022',
            module: resolution === 'NodeNext' ? 'NodeNext' : 'ESNext',
            moduleResolution: resolution,
            types: ['node'],
            skipLibCheck: false,
          },
          include: ['*.ts'],
        }),
      );
      writeFileSync(
        join(dir, 'good.ts'),
        `import { createVerifier, type Verifier } from '@latchkey/sdk/verify';
import { createTokenClient } from '@latchkey/sdk/token-client';
import { createAuthorizer } from '@latchkey/sdk/authorize';
import { createIdpConnection } from '@latchkey/sdk/connection';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { createWorkloadIdentity } from '@latchkey/sdk/workload';
import { registerLatchkeyMetrics } from '@latchkey/sdk/metrics';
import { requireToken as fastifyHook } from '@latchkey/sdk/fastify';
import { requireToken as expressMiddleware } from '@latchkey/sdk/express';
import { authenticate } from '@latchkey/sdk/node';
import * as everything from '@latchkey/sdk';
import { loadSidecarConfig, startSidecar, type SidecarConfig } from '@latchkey/sidecar';
import { CompiledBundle, isAuthorized } from '@latchkey/policy';
import type { AccessTokenClaims } from '@latchkey/protocol';
export const all = [createIdpConnection, createAuditQueue, createWorkloadIdentity, registerLatchkeyMetrics, fastifyHook, expressMiddleware, authenticate, everything.createVerifier, CompiledBundle, isAuthorized];
export async function run(issuer: string, secret: string): Promise<string> {
  const verifier: Verifier = await createVerifier({ issuer, audience: 'https://orders.internal', clockSkew: 30 });
  const tokens = createTokenClient({ issuer, clientId: 'svc', clientSecret: secret });
  const claims: AccessTokenClaims = await verifier.verify(await tokens.getToken({ audience: 'https://orders.internal' }));
  void createAuthorizer;
  const config: SidecarConfig = loadSidecarConfig('sidecar.yaml');
  void startSidecar;
  return claims.client_id + config.audience;
}
`,
      );
      const tsc = join(app, 'node_modules', '.bin', 'tsc');
      await exec(tsc, ['-p', dir], { cwd: dir, env: env() }).catch((err: { stdout: string }) =>
        assert.fail(err.stdout),
      );
      writeFileSync(
        join(dir, 'bad.ts'),
        `import { createVerifier } from '@latchkey/sdk/verify';
export const v = createVerifier({ issuer: 'https://idp', audiance: 'https://orders.internal' });
`,
      );
      const bad = await exec(tsc, ['-p', dir], { cwd: dir, env: env() }).then(
        () => ({ stdout: '' }),
        (err: { stdout: string }) => err,
      );
      assert.match(bad.stdout, /bad\.ts.*audiance/s, 'the misspelt option is a type error');
      assert.doesNotMatch(bad.stdout, /good\.ts|node_modules/, 'and nothing else is');
    });
  }

  test('the installed `latchkey-sidecar` (and `latchkey sidecar`) guards an upstream with a policy pushed by the installed CLI', async () => {
    const bin = join(app, 'node_modules', '.bin');
    const cli = { env: env({ LATCHKEY_URL: issuer, LATCHKEY_DATA_DIR: data, LATCHKEY_ADMIN_TOKEN: adminToken }) };
    const policyDir = join(app, 'policy');
    mkdirSync(policyDir, { recursive: true });
    writeFileSync(
      join(policyDir, 'schema.cedarschema'),
      'entity Service;\nnamespace Orders { entity Order; action read appliesTo { principal: [Service], resource: Order, context: {} }; }\n',
    );
    writeFileSync(
      join(policyDir, 'orders.cedar'),
      '@id("consumer-reads")\npermit(principal == Service::"consumer-svc", action == Orders::Action::"read", resource);\n',
    );
    await exec(join(bin, 'latchkey'), ['policy', 'push', policyDir], cli);
    const upstream = (await import('node:http')).createServer((req, res) =>
      res.end(JSON.stringify({ sub: req.headers['x-latchkey-sub'] ?? null })),
    );
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const config = join(app, 'sidecar.json');
    writeFileSync(
      config,
      JSON.stringify({
        idp: { issuer, client_id: 'consumer-svc', ca_file: caPem },
        audience: 'https://orders.internal',
        routes: [
          {
            methods: 'GET',
            path: '/orders/:id',
            action: 'Orders::Action::"read"',
            resource: { type: 'Orders::Order', id: { param: 'id' } },
          },
        ],
        proxy: { listen: { port: 0 }, upstream: `http://127.0.0.1:${(upstream.address() as { port: number }).port}` },
        ext_authz: { grpc: { listen: { port: 0 } } },
      }),
    );
    for (const command of [[join(bin, 'latchkey-sidecar')], [join(bin, 'latchkey'), 'sidecar']]) {
      const child = spawn(command[0]!, [...command.slice(1), '--config', config], {
        env: env({ LATCHKEY_SIDECAR_CLIENT_SECRET: secret }),
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      for (let i = 0; i < 300 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 100));
      const ready = JSON.parse(out.split('\n').find((l) => l.includes('ready')) ?? '{}') as {
        proxy: string;
        grpc: string;
      };
      assert.ok(ready.proxy && ready.grpc, out);
      const tokenRes = await exec(
        join(bin, 'latchkey'),
        ['token', '--client-id', 'consumer-svc', '--audience', 'https://orders.internal'],
        { env: env({ LATCHKEY_URL: issuer, LATCHKEY_DATA_DIR: data, LATCHKEY_CLIENT_SECRET: secret }) },
      );
      const token = tokenRes.stdout.trim();
      const r = await fetch(`${ready.proxy}/orders/1`, { headers: { authorization: `Bearer ${token}` } });
      assert.deepEqual(await r.json(), { sub: 'consumer-svc' });
      assert.equal((await fetch(`${ready.proxy}/orders/1`)).status, 401);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
    upstream.close();
  });

  test("@latchkey/sdk/verify and /token-client load neither cedar-wasm nor @peculiar/x509; every subpath's import time is measured", async () => {
    // A resolve hook that records every module the import loads.
    writeFileSync(
      join(app, 'trace.mjs'),
      [
        "import { register } from 'node:module';",
        "import { MessageChannel } from 'node:worker_threads';",
        'const { port1, port2 } = new MessageChannel();',
        'const seen = [];',
        "port1.on('message', (u) => seen.push(u)); port1.unref();",
        "register('./trace-hooks-port.mjs', import.meta.url, { data: { port: port2 }, transferList: [port2] });",
        'const sub = process.argv[2];',
        'const t0 = performance.now();',
        'await import(sub);',
        'const ms = performance.now() - t0;',
        'await new Promise((r) => setTimeout(r, 50));',
        // CommonJS modules (cedar-wasm's Node build is one) bypass the ESM hooks: read require's cache too.
        "const { createRequire } = await import('node:module');",
        'const cjs = Object.keys(createRequire(import.meta.url).cache);',
        'console.log(JSON.stringify({ ms, loaded: [...seen, ...cjs] }));',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'trace-hooks-port.mjs'),
      'let port; export function initialize(d) { port = d.port; } export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }\n',
    );
    const subpaths = [
      '@latchkey/sdk/verify',
      '@latchkey/sdk/token-client',
      '@latchkey/sdk/fastify',
      '@latchkey/sdk/express',
      '@latchkey/sdk/node',
      '@latchkey/sdk/audit',
      '@latchkey/sdk/authorize',
      '@latchkey/sdk/workload',
      '@latchkey/sdk/metrics',
      '@latchkey/sdk',
      '@latchkey/protocol',
      '@latchkey/policy',
    ];
    const times: Record<string, number> = {};
    for (const sub of subpaths) {
      const runs: { ms: number; loaded: string[] }[] = [];
      for (let i = 0; i < 3; i++)
        runs.push(
          JSON.parse((await exec(process.execPath, [join(app, 'trace.mjs'), sub], { cwd: app, env: env() })).stdout),
        );
      times[sub] = Math.round([...runs.map((r) => r.ms)].sort((a, b) => a - b)[1]! * 10) / 10;
      if (sub.endsWith('/verify') || sub.endsWith('/token-client')) {
        const heavy = runs[0]!.loaded.filter((u) => /cedar-wasm|@peculiar\/x509|@latchkey\/policy/.test(u));
        assert.deepEqual(heavy, [], `${sub} loads ${heavy.join(', ')}`);
        assert.ok(
          runs[0]!.loaded.some((u) => u.includes('/node_modules/@latchkey/sdk/dist/')),
          'the trace sees the SDK itself',
        );
      }
      // The trace does see them where they belong (so the check above can fail).
      if (sub.endsWith('/workload'))
        assert.ok(
          runs[0]!.loaded.some((u) => u.includes('@peculiar/x509')),
          'workload loads @peculiar/x509',
        );
    }
    console.log(`# import times (ms, median of 3, Node ${process.version}): ${JSON.stringify(times)}`);
  });
});

// The current LTS, from the npm registry's `node` package (no other download source is reachable).
// better-sqlite3 is built against that Node's own headers (shipped in the package), as a user on it would.
const LTS = process.env.LATCHKEY_TEST_LTS ?? '24';
describe(`the same on the current LTS (Node ${LTS})`, { timeout: 900_000 }, () => {
  let app: string;
  let ltsBin: string;
  let runEnv: Record<string, string>;
  let server: ReturnType<typeof spawn> | undefined;
  let s: { issuer: string; secret: string; caPem: string };

  before(async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'latchkey-consumer-lts-'));
    const nodeDir = join(scratch, 'node');
    mkdirSync(nodeDir);
    writeFileSync(
      join(nodeDir, 'package.json'),
      JSON.stringify({ name: 'lts-node', version: '1.0.0', private: true, allowScripts: { node: true } }),
    );
    await exec('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `node@${LTS}`], {
      cwd: nodeDir,
      env: env(),
      maxBuffer: 1 << 24,
    });
    ltsBin = join(nodeDir, 'node_modules', 'node', 'bin');
    runEnv = {
      PATH: `${ltsBin}:${process.env.PATH}`,
      npm_config_nodedir: join(nodeDir, 'node_modules', 'node', 'node_modules', `node-linux-${process.arch}`),
    };
    app = join(scratch, 'app');
    await installConsumer(app, await packAll(join(scratch, 'tarballs')), runEnv);
  });
  after(() => {
    server?.kill('SIGTERM');
  });

  test('the installed `latchkey` serves and registers a client under the LTS', async () => {
    const version = (await exec('node', ['--version'], { env: env(runEnv) })).stdout.trim();
    assert.match(version, new RegExp(`^v${LTS}\\.`));
    const r = await serveAndRegister(app, runEnv);
    server = r.server;
    s = r;
  });

  for (const mod of ['esm', 'cjs'] as const) {
    test(`${mod === 'esm' ? '.mjs (import)' : '.cjs (require)'} consumer under the LTS`, async () => {
      const out = await runConsumer(app, mod, join(ltsBin, 'node'), s);
      assert.deepEqual([out.client_id, out.scope], ['consumer-svc', 'orders:read']);
      assert.match(out.node, new RegExp(`^v${LTS}\\.`));
    });
  }
});
