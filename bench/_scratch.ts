import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startTestIdp } from '@latchkey/testkit';
import { stringify } from 'yaml';
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
function child(script: string, args: string[], execArgv: string[] = []) {
  const proc = fork(here(script), args, {
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return new Promise<{ proc: ChildProcess; ready: any }>((resolve, reject) => {
    proc.once('message', (m: any) => resolve({ proc, ready: m }));
    proc.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
}
const t = await startTestIdp();
await t.admin('/admin/policy', {
  schema: {
    'schema.cedarschema':
      'entity Service;\nnamespace Orders { entity Order { tenant: String }; action read appliesTo { principal: [Service], resource: Order, context: {} }; }\n',
  },
  policies: {
    reads:
      'permit(principal == Service::"checkout", action == Orders::Action::"read", resource) when { resource.tenant == "acme" };',
  },
  entities: [],
});
const service = await t.register({ client_id: 'orders', audiences: ['https://orders.internal'] });
const caller = await t.register({ client_id: 'checkout', audiences: ['https://orders.internal'] });
const token = (
  await t.post(
    '/token',
    { grant_type: 'client_credentials', resource: 'https://orders.internal' },
    { authorization: `Basic ${Buffer.from(`${caller.client_id}:${caller.client_secret}`).toString('base64')}` },
  )
).body.access_token as string;
const upstream = await child('sidecar_upstream_child.ts', []);
const upstreamUrl = `http://127.0.0.1:${upstream.ready.port}`;
console.log('upstream', upstreamUrl, 'idp', t.issuer);
const ceiling = await child('proxy_ceiling_child.ts', [upstreamUrl]);
const dir = join(t.dataDir, 'sc');
mkdirSync(dir, { recursive: true });
if (t.caPem) writeFileSync(join(dir, 'ca.pem'), t.caPem);
writeFileSync(
  join(dir, 's.yaml'),
  stringify({
    idp: {
      issuer: t.issuer,
      client_id: 'orders',
      client_secret: service.client_secret,
      ...(t.caPem ? { ca_file: join(dir, 'ca.pem') } : {}),
    },
    audience: 'https://orders.internal',
    routes: [
      { methods: 'GET', path: '/public/*', auth: 'none' },
      { methods: 'GET', path: '/noaction/*', scope: undefined },
      {
        methods: 'GET',
        path: '/tenants/:tenant/orders/:id',
        action: 'Orders::Action::"read"',
        resource: { type: 'Orders::Order', id: { param: 'id' }, attrs: { tenant: { param: 'tenant' } } },
      },
    ].map((r) => JSON.parse(JSON.stringify(r))),
    proxy: { listen: { port: 0 }, upstream: upstreamUrl },
    listen: { port: 0 },
    log_level: 'silent',
  }),
);
const prof = process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=/tmp/scr/prof`] : [];
const sidecar = await child('sidecar_child.ts', [join(dir, 's.yaml')], prof);
const path = '/tenants/acme/orders/1';
const auth = { authorization: `Bearer ${token}` };
const subjects: [string, string, Record<string, string>, number[]][] = [
  ['straight', `${upstreamUrl}${path}`, {}, [upstream.proc.pid!]],
  ['node ceiling proxy', `http://127.0.0.1:${ceiling.ready.port}${path}`, {}, [ceiling.proc.pid!, upstream.proc.pid!]],
  ['sidecar public', `${sidecar.ready.proxy}/public${path}`, {}, [sidecar.proc.pid!, upstream.proc.pid!]],
  ['sidecar token no action', `${sidecar.ready.proxy}/noaction${path}`, auth, [sidecar.proc.pid!, upstream.proc.pid!]],
  ['sidecar gated', `${sidecar.ready.proxy}${path}`, auth, [sidecar.proc.pid!, upstream.proc.pid!]],
];
const only = process.env.ONLY;
const dur = Number(process.env.DUR ?? 4);
for (let round = 0; round < Number(process.env.ROUNDS ?? 2); round++)
  for (const [name, url, headers, pids] of subjects) {
    if (only && !name.includes(only)) continue;
    await autocannon({ url, headers, connections: 16, duration: 1 });
    const before = pids.map(cpuSeconds);
    const own = pids.map((p) => cpuSeconds(p));
    const st = process.env.STRACE
      ? (await import('node:child_process')).spawn('strace', [
          ...(process.env.STRACE === 'c' ? ['-c'] : ['-e', 'trace=connect,close,shutdown']),
          '-f',
          '-p',
          String(pids[0]),
          '-o',
          `/tmp/scr/strace-${name.replace(/ /g, '_')}.txt`,
        ])
      : undefined;
    if (st) await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    const r = await autocannon({ url, headers, connections: 16, duration: dur });
    if (st) {
      st.kill('SIGINT');
      await new Promise((r) => st.once('exit', r));
    }
    const wall = (performance.now() - t0) / 1000;
    const cpus = pids.map((p, i) => cpuSeconds(p) - (before[i] as number));
    const cpu = cpus.reduce((a, b) => a + b, 0);
    console.log(
      `${name.padEnd(26)} rps ${Math.round(r.requests.total / wall)} perCPU ${Math.round(r.requests.total / cpu)} µs/req by process ${cpus.map((c) => ((c / r.requests.total) * 1e6).toFixed(1)).join(' / ')} non2xx ${r.non2xx}`,
    );
    void own;
  }
if (process.env.PROBE) {
  const { Agent, request } = await import('undici');
  const probe = async (url: string, headers: Record<string, string>, n: number) => {
    const dispatcher = new Agent({ connections: 1 });
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      const res = await request(url, { headers, dispatcher });
      await res.body.dump();
      out.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    await dispatcher.close();
    return out;
  };
  const res: Record<string, number[]> = {};
  for (let b = 0; b < 10; b++)
    for (const [name, url, headers] of subjects) (res[name] ??= []).push(...(await probe(url, headers, 500)));
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!.toFixed(0);
  for (const [name, xs] of Object.entries(res))
    console.log(name.padEnd(26), 'p50', q(xs, 0.5), 'p90', q(xs, 0.9), 'p99', q(xs, 0.99), 'p99.9', q(xs, 0.999));
}
for (const c of [sidecar, upstream, ceiling]) {
  const e = new Promise((r) => c.proc.once('exit', r));
  c.proc.send({ kind: 'stop' });
  await e;
}
await t.close();
