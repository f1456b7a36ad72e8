import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestIdp, type TestIdp } from '@latchkey/testkit';
import { stringify } from 'yaml';
import { loadSidecarConfig } from '../src/config/load_sidecar_config.ts';
import { type RunningSidecar, startSidecar } from '../src/sidecar.ts';

export const AUDIENCE = 'https://orders.internal';

/** Orders with a tenant and an owner: tenant isolation for reads, owner-only cancels. */
export const SCHEMA = `entity Role;
entity Service in [Role] { tenant: String };
entity User in [Role] { tenant: String };
namespace Orders {
  entity Order { tenant: String, owner?: Service };
  action read, cancel, upload appliesTo { principal: [Service, User], resource: Order, context: {} };
}
`;
export const POLICIES = {
  'readers-read-own-tenant':
    'permit(principal in Role::"reader", action == Orders::Action::"read", resource) when { principal.tenant == resource.tenant };',
  'owner-cancels':
    'permit(principal, action == Orders::Action::"cancel", resource) when { resource has owner && resource.owner == principal };',
  'uploaders-upload': 'permit(principal in Role::"reader", action == Orders::Action::"upload", resource);',
};
const uid = (type: string, id: string) => ({ type, id });
export const ENTITIES = [
  { uid: uid('Role', 'reader'), attrs: {}, parents: [] },
  { uid: uid('Service', 'checkout'), attrs: { tenant: 'acme' }, parents: [uid('Role', 'reader')] },
  { uid: uid('Service', 'evil'), attrs: { tenant: 'evil' }, parents: [uid('Role', 'reader')] },
  { uid: uid('User', 'alice'), attrs: { tenant: 'acme' }, parents: [uid('Role', 'reader')] },
];

/** The route table of the tests (YAML as an operator writes it). */
export const ROUTES = [
  { methods: 'GET', path: '/health', auth: 'none' },
  {
    methods: ['GET', 'HEAD'],
    path: '/tenants/:tenant/orders/:id',
    action: 'Orders::Action::"read"',
    resource: { type: 'Orders::Order', id: { param: 'id' }, attrs: { tenant: { param: 'tenant' } } },
  },
  {
    methods: 'DELETE',
    path: '/tenants/:tenant/orders/:id',
    action: 'Orders::Action::"cancel"',
    resource: {
      type: 'Orders::Order',
      id: { param: 'id' },
      attrs: {
        tenant: { param: 'tenant' },
        owner: { from: { query: 'owner' }, type: 'entity', entity_type: 'Service' },
      },
    },
  },
  {
    methods: 'POST',
    path: '/upload/:name',
    action: 'Orders::Action::"upload"',
    resource: { type: 'Orders::Order', id: { param: 'name' }, attrs: { tenant: { value: 'acme' } } },
  },
  {
    methods: 'GET',
    path: '/ext/orders/:id',
    action: 'Orders::Action::"read"',
    resource: { type: 'Orders::Order', id: { param: 'id' }, attrs: { tenant: { extension: 'tenant' } } },
  },
  {
    methods: 'GET',
    path: '/peer/tenants/:tenant',
    auth: 'mtls',
    action: 'Orders::Action::"read"',
    resource: { type: 'Orders::Order', id: { value: 'peer' }, attrs: { tenant: { param: 'tenant' } } },
  },
  {
    methods: 'GET',
    path: '/ws',
    action: 'Orders::Action::"read"',
    resource: { type: 'Orders::Order', id: { value: 'ws' }, attrs: { tenant: { value: 'acme' } } },
  },
];

/** The Python upstream (standard library only): started on a free port, lines of its stdout observable. */
export class PythonUpstream {
  readonly proc: ChildProcess;
  url = '';
  private lines: string[] = [];
  private waiters: { match: string; resolve: () => void }[] = [];

  private constructor() {
    this.proc = spawn('python3', [fileURLToPath(new URL('./fixtures/upstream.py', import.meta.url)), '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffered = '';
    this.proc.stdout?.on('data', (b: Buffer) => {
      buffered += b.toString();
      for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        this.lines.push(line);
        for (const w of [...this.waiters])
          if (line.startsWith(w.match)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve();
          }
      }
    });
  }

  static async start(): Promise<PythonUpstream> {
    const u = new PythonUpstream();
    await u.line('listening');
    const port = u.lines.find((l) => l.startsWith('listening'))?.split(' ')[1];
    u.url = `http://127.0.0.1:${port}`;
    return u;
  }

  /** Resolves when the upstream prints a line starting with `match` (now or earlier). */
  line(match: string): Promise<void> {
    if (this.lines.some((l) => l.startsWith(match))) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  stop(): void {
    this.proc.kill();
  }
}

export interface Estate {
  t: TestIdp;
  upstream: PythonUpstream;
  sidecar: RunningSidecar;
  service: Record<string, string>;
  clients: Record<string, Record<string, string>>;
  configFile: string;
  dir: string;
  token(client: string): Promise<string>;
  close(): Promise<void>;
}

/** An IdP with the policy, the protected service and its callers, the Python upstream, and a sidecar in front of it. */
export async function startEstate(
  extra: Record<string, unknown> = {},
  proxyListen: Record<string, unknown> = {},
): Promise<Estate> {
  const t = await startTestIdp();
  const published = await t.admin('/admin/policy', {
    schema: { 'schema.cedarschema': SCHEMA },
    policies: POLICIES,
    entities: ENTITIES,
  });
  if (published.status !== 201) throw new Error(`policy: ${published.status} ${await published.text()}`);
  const service = await t.register({ client_id: 'orders', audiences: [AUDIENCE] });
  const clients: Estate['clients'] = {};
  for (const id of ['checkout', 'evil'])
    clients[id] = await t.register({ client_id: id, audiences: [AUDIENCE], roles: ['reader'] });
  const upstream = await PythonUpstream.start();
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-sidecar-'));
  if (t.caPem) writeFileSync(join(dir, 'idp-ca.pem'), t.caPem);
  const configFile = join(dir, 'sidecar.yaml');
  writeFileSync(
    configFile,
    stringify({
      idp: { issuer: t.issuer, client_id: service.client_id, ...(t.caPem ? { ca_file: join(dir, 'idp-ca.pem') } : {}) },
      audience: AUDIENCE,
      routes: ROUTES,
      proxy: {
        listen: { host: '127.0.0.1', port: 0, ...proxyListen },
        upstream: upstream.url,
        body_limit: 1024 * 1024 * 64,
      },
      listen: { host: '127.0.0.1', port: 0 },
      ext_authz: { grpc: { listen: { host: '127.0.0.1', port: 0 } } },
      ...extra,
    }),
  );
  const config = loadSidecarConfig(configFile, { LATCHKEY_SIDECAR_CLIENT_SECRET: service.client_secret });
  const sidecar = await startSidecar(config, { logger: false });
  return {
    t,
    upstream,
    sidecar,
    service,
    clients,
    configFile,
    dir,
    async token(client) {
      const c = clients[client] as Record<string, string>;
      const r = await t.post(
        '/token',
        { grant_type: 'client_credentials', resource: AUDIENCE },
        {
          authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`,
        },
      );
      if (r.status !== 200) throw new Error(`token: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.access_token as string;
    },
    async close() {
      await sidecar.close();
      upstream.stop();
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
