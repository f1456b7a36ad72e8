// Issue 14: what the sidecar adds. One run: the upstream straight, through a plain node:http proxy
// (the ceiling of any proxy written for Node), through the sidecar's reverse proxy, nginx straight to the upstream, nginx with the sidecar's forward auth, and Check calls
// over gRPC. Throughput at saturation (autocannon, keep-alive) with the CPU of every process on
// the path, and added latency from a sequential probe (one request at a time, a seen token).
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import autocannon from 'autocannon';
import { Agent, request } from 'undici';
import { startTestIdp, freePort } from '@latchkey/testkit';
import { stringify } from 'yaml';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const TICK = 100; // clock ticks per second in /proc/<pid>/stat (USER_HZ)

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

function child(script: string, args: string[]): Promise<{ proc: ChildProcess; ready: Record<string, unknown> }> {
  const proc = fork(here(script), args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return new Promise((resolve, reject) => {
    proc.once('message', (m: Record<string, unknown>) => resolve({ proc, ready: m }));
    proc.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
}

async function until(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number;

export interface SidecarSample {
  rps: number;
  /** CPU cores busy on the path (sidecar, nginx, upstream), and requests per CPU second of the path. */
  cores: number;
  perCore: number;
  p50: number;
  p99: number;
  errors: number;
}

async function saturate(
  url: string,
  headers: Record<string, string>,
  pids: number[],
  duration: number,
  connections: number,
): Promise<SidecarSample> {
  await autocannon({ url, headers, connections, duration: 1 });
  const before = pids.map(cpuSeconds);
  const t0 = performance.now();
  const r = await autocannon({ url, headers, connections, duration });
  const wall = (performance.now() - t0) / 1000;
  const cpu = pids.map(cpuSeconds).reduce((s, v, i) => s + v - (before[i] as number), 0);
  return {
    rps: r.requests.total / wall,
    cores: cpu / wall,
    perCore: r.requests.total / cpu,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.non2xx + r.errors,
  };
}

/** One request at a time over a keep-alive connection: latency in microseconds. */
async function probe(url: string, headers: Record<string, string>, n: number): Promise<number[]> {
  const dispatcher = new Agent({ connections: 1 });
  const out: number[] = [];
  for (let i = 0; i < n + 50; i++) {
    const t0 = process.hrtime.bigint();
    const res = await request(url, { headers, dispatcher });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
    if (i >= 50) out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  await dispatcher.close();
  return out;
}

export async function benchSidecar(options: { duration: number; rounds: number; connections: number }) {
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
      {
        authorization: `Basic ${Buffer.from(`${caller.client_id}:${caller.client_secret}`).toString('base64')}`,
      },
    )
  ).body.access_token as string;
  const auth = { authorization: `Bearer ${token}` };
  const upstream = await child('sidecar_upstream_child.ts', []);
  const upstreamUrl = `http://127.0.0.1:${upstream.ready.port}`;
  // The physical ceiling of a proxy in Node: node:http in and out, nothing checked.
  const ceiling = await child('proxy_ceiling_child.ts', [upstreamUrl]);
  const dir = join(t.dataDir, 'sidecar-bench');
  mkdirSync(dir, { recursive: true });
  if (t.caPem) writeFileSync(join(dir, 'ca.pem'), t.caPem);
  writeFileSync(
    join(dir, 'sidecar.yaml'),
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
        {
          methods: 'GET',
          path: '/tenants/:tenant/orders/:id',
          action: 'Orders::Action::"read"',
          resource: { type: 'Orders::Order', id: { param: 'id' }, attrs: { tenant: { param: 'tenant' } } },
        },
      ],
      proxy: { listen: { port: 0 }, upstream: upstreamUrl },
      listen: { port: 0 },
      ext_authz: { grpc: { listen: { port: 0 } } },
      log_level: 'silent',
    }),
  );
  const sidecar = await child('sidecar_child.ts', [join(dir, 'sidecar.yaml')]);
  const nginxPort = await freePort();
  const nginxDir = join(dir, 'nginx');
  mkdirSync(nginxDir, { recursive: true });
  writeFileSync(
    join(nginxDir, 'nginx.conf'),
    `worker_processes 1; master_process off; daemon off; error_log ${nginxDir}/error.log warn; pid ${nginxDir}/nginx.pid;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${nginxDir}/b; proxy_temp_path ${nginxDir}/p; fastcgi_temp_path ${nginxDir}/f; uwsgi_temp_path ${nginxDir}/u; scgi_temp_path ${nginxDir}/s;
  upstream app { server ${upstreamUrl.replace('http://', '')}; keepalive 32; }
  upstream lk { server ${String(sidecar.ready.api).replace('http://', '')}; keepalive 32; }
  server { listen 127.0.0.1:${nginxPort};
    location = /_auth { internal; proxy_pass http://lk/auth; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass_request_body off; proxy_set_header Content-Length ""; proxy_set_header X-Original-URI $request_uri; proxy_set_header X-Original-Method $request_method; }
    location /direct/ { proxy_pass http://app/; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location / { auth_request /_auth; auth_request_set $lk_sub $upstream_http_x_latchkey_sub; proxy_set_header X-Latchkey-Sub $lk_sub; proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
  );
  const nginx = spawn('nginx', ['-p', nginxDir, '-c', join(nginxDir, 'nginx.conf')], { stdio: 'inherit' });
  await until(nginxPort);
  const path = '/tenants/acme/orders/1';
  const pids = {
    upstream: upstream.proc.pid!,
    sidecar: sidecar.proc.pid!,
    nginx: nginx.pid!,
    ceiling: ceiling.proc.pid!,
  };
  const subjects: [string, string, Record<string, string>, number[]][] = [
    ['upstream straight (node:http)', `${upstreamUrl}${path}`, {}, [pids.upstream]],
    [
      'ceiling: plain node:http proxy (no checks) → upstream',
      `http://127.0.0.1:${ceiling.ready.port}${path}`,
      {},
      [pids.ceiling, pids.upstream],
    ],
    ['sidecar reverse proxy → upstream', `${sidecar.ready.proxy}${path}`, auth, [pids.sidecar, pids.upstream]],
    [
      'sidecar reverse proxy, public route (no token, no decision) → upstream',
      `${sidecar.ready.proxy}/public${path}`,
      {},
      [pids.sidecar, pids.upstream],
    ],
    ['nginx → upstream', `http://127.0.0.1:${nginxPort}/direct${path}`, {}, [pids.nginx, pids.upstream]],
    [
      'nginx + sidecar forward auth → upstream',
      `http://127.0.0.1:${nginxPort}${path}`,
      auth,
      [pids.nginx, pids.sidecar, pids.upstream],
    ],
  ];
  const samples: Record<string, SidecarSample[]> = {};
  const latency: Record<string, { p50: number; p99: number }> = {};
  for (let round = 0; round < options.rounds; round++)
    for (const [name, url, headers, p] of subjects)
      (samples[name] ??= []).push(await saturate(url, headers, p, options.duration, options.connections));
  // Interleaved batches, so a noisy moment of the machine falls on every path alike.
  const probes: Record<string, number[]> = {};
  for (let batch = 0; batch < 10; batch++)
    for (const [name, url, headers] of subjects) (probes[name] ??= []).push(...(await probe(url, headers, 500)));
  for (const [name] of subjects) latency[name] = { p50: pct(probes[name]!, 0.5), p99: pct(probes[name]!, 0.99) };

  // gRPC Check, as Envoy calls it: `connections` calls in flight for `duration` seconds.
  const def = protoLoader.loadSync(here('../packages/sidecar/proto/envoy/service/auth/v3/external_auth.proto'), {
    keepCase: true,
    includeDirs: [here('../packages/sidecar/proto')],
  });
  const Authz = (grpc.loadPackageDefinition(def) as any).envoy.service.auth.v3.Authorization;
  const client = new Authz(sidecar.ready.grpc, grpc.credentials.createInsecure());
  const checkRequest = {
    attributes: {
      request: { http: { method: 'GET', path, headers: { authorization: auth.authorization } } },
      source: { address: { socket_address: { address: '127.0.0.1' } } },
    },
  };
  const check = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      client.Check(checkRequest, (err: unknown, res: { status: { code: number } }) =>
        err || res.status.code !== 0
          ? reject(err ?? new Error(`denied ${res.status.code}`))
          : resolve(Number(process.hrtime.bigint() - t0) / 1000),
      );
    });
  for (let i = 0; i < 500; i++) await check();
  const grpcRounds: { rps: number; cores: number; perCore: number; p50: number; p99: number }[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const before = cpuSeconds(pids.sidecar);
    const end = performance.now() + options.duration * 1000;
    const lat: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: options.connections }, async () => {
        while (performance.now() < end) lat.push(await check());
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(pids.sidecar) - before;
    grpcRounds.push({
      rps: lat.length / wall,
      cores: cpu / wall,
      perCore: lat.length / cpu,
      p50: pct(lat, 0.5) / 1000,
      p99: pct(lat, 0.99) / 1000,
    });
  }
  const single: number[] = [];
  for (let i = 0; i < 3000; i++) single.push(await check());
  client.close();

  const result: Record<string, SidecarSample & { probeP50: number; probeP99: number }> = {};
  for (const [name] of subjects) {
    const s = samples[name] as SidecarSample[];
    result[name] = {
      rps: median(s.map((x) => x.rps)),
      cores: median(s.map((x) => x.cores)),
      perCore: median(s.map((x) => x.perCore)),
      p50: median(s.map((x) => x.p50)),
      p99: median(s.map((x) => x.p99)),
      errors: s.reduce((a, x) => a + x.errors, 0),
      probeP50: latency[name]!.p50,
      probeP99: latency[name]!.p99,
    };
  }
  const grpcResult = {
    rps: median(grpcRounds.map((x) => x.rps)),
    cores: median(grpcRounds.map((x) => x.cores)),
    perCore: median(grpcRounds.map((x) => x.perCore)),
    p50: median(grpcRounds.map((x) => x.p50)),
    p99: median(grpcRounds.map((x) => x.p99)),
    probeP50: pct(single, 0.5),
    probeP99: pct(single, 0.99),
  };
  nginx.kill();
  for (const c of [sidecar, ceiling, upstream]) {
    const exited = new Promise((r) => c.proc.once('exit', r));
    c.proc.send({ kind: 'stop' });
    await exited;
  }
  await t.close();
  return { http: result, grpc: grpcResult };
}
