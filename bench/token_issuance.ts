import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { Target } from './cpu.ts';

export interface Child {
  proc: ChildProcess;
  target: Target;
}

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

export async function start(script: string, args: string[] = []): Promise<Child> {
  const proc = fork(here(script), args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: process.env.BENCH_SOURCE ? process.env.NODE_OPTIONS : '' },
  });
  const target = await new Promise<Target>((resolve, reject) => {
    proc.once('message', (m: { kind: string; target: Target }) =>
      m.kind === 'ready' ? resolve(m.target) : reject(new Error('unexpected')),
    );
    proc.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
  return { proc, target };
}

export const cpu = (c: Child): Promise<NodeJS.CpuUsage> =>
  new Promise((resolve) => {
    const on = (m: { kind: string; usage: NodeJS.CpuUsage }) => {
      if (m.kind === 'cpu') {
        c.proc.off('message', on);
        resolve(m.usage);
      }
    };
    c.proc.on('message', on);
    c.proc.send({ kind: 'cpu' });
  });

export async function stop(c: Child): Promise<void> {
  const exited = new Promise((r) => c.proc.once('exit', r));
  c.proc.send({ kind: 'stop' });
  await exited;
}

export interface Sample {
  rps: number;
  p50: number;
  p99: number;
  /** Server CPU seconds per wall second (cores busy). */
  cores: number;
  /** Tokens per server CPU second. */
  perCore: number;
  non2xx: number;
}

async function measure(c: Child, duration: number, connections: number): Promise<Sample> {
  const opts = {
    url: c.target.url,
    method: 'POST' as const,
    connections,
    duration,
    headers: {
      'content-type': c.target.contentType ?? 'application/x-www-form-urlencoded',
      ...(c.target.authorization ? { authorization: c.target.authorization } : {}),
    },
    body: c.target.body,
    ...(c.target.bodies
      ? (() => {
          const bodies = c.target.bodies;
          let next = 0;
          return {
            requests: [
              {
                method: 'POST' as const,
                setupRequest: ((req: Record<string, unknown>) => ({
                  ...req,
                  body: bodies[next++ % bodies.length],
                })) as unknown as autocannon.Request['setupRequest'],
              },
            ],
          };
        })()
      : {}),
  };
  await autocannon({ ...opts, duration: 1 }); // warm-up
  const before = await cpu(c);
  const t0 = process.hrtime.bigint();
  const r = await autocannon(opts);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = await cpu(c);
  const cpuSec = (after.user - before.user + after.system - before.system) / 1e6;
  const total = r.requests.total;
  return {
    rps: total / wall,
    p50: r.latency.p50,
    p99: r.latency.p99,
    cores: cpuSec / wall,
    perCore: total / cpuSec,
    non2xx: r.non2xx + r.errors,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

export async function benchTokenIssuance(options: {
  duration: number;
  rounds: number;
  connections: number;
}): Promise<Record<string, Sample & { tokenBytes: number }>> {
  return benchSubjects(
    [
      ['ceiling: plain node:https + node:crypto sign', 'ceiling_child.ts', ['plain']],
      ['peer: bare Fastify + node:crypto sign', 'ceiling_child.ts', ['node-crypto']],
      ['reference: bare Fastify + jose SignJWT', 'ceiling_child.ts', ['jose']],
      ['Latchkey /token (client_secret_basic, ES256, SQLite, audit on)', 'idp_child.ts', ['token']],
      ['Latchkey /token, audit on, access log on (info, to /dev/null)', 'idp_child.ts', ['token-logged']],
      ['Latchkey /token, audit off (benchmark-only switch)', 'idp_child.ts', ['token-audit-off']],
      ['Latchkey /token, status list off (LATCHKEY_STATUS_LIST=false)', 'idp_child.ts', ['token-status-off']],
    ],
    options,
  );
}

/** Token exchange (RFC 8693) and Transaction Tokens beside client_credentials on the same IdP build (issue 16). */
export async function benchTokenExchange(options: {
  duration: number;
  rounds: number;
  connections: number;
}): Promise<Record<string, Sample & { tokenBytes: number }>> {
  return benchSubjects(
    [
      ['Latchkey client_credentials (the reference)', 'idp_child.ts', ['token']],
      [
        'Latchkey token exchange → access token (the same subject token again: verified once)',
        'idp_child.ts',
        ['exchange'],
      ],
      ['Latchkey token exchange → access token (a new subject token each time)', 'idp_child.ts', ['exchange-new']],
      ['Latchkey token exchange → Transaction Token', 'idp_child.ts', ['txn']],
    ],
    options,
  );
}

/** POST /audit/events with batches of 200 decision events, on SQLite and (given a URL) PostgreSQL. */
export async function benchAuditIngestion(options: {
  duration: number;
  rounds: number;
  connections: number;
  databaseUrl: string | undefined;
}): Promise<Record<string, Sample & { tokenBytes: number }>> {
  return benchSubjects(
    [
      ['POST /audit/events, 200 per batch, SQLite', 'idp_child.ts', ['ingest']],
      ...(options.databaseUrl
        ? [
            ['POST /audit/events, 200 per batch, PostgreSQL', 'idp_child.ts', ['ingest', options.databaseUrl]] as [
              string,
              string,
              string[],
            ],
          ]
        : []),
    ],
    options,
  );
}

/** POST /workload/certificate (a P-256 CSR, client_secret_basic) beside a bare Fastify route signing the same CSR with @peculiar/x509. */
export async function benchCertificateIssuance(options: {
  duration: number;
  rounds: number;
  connections: number;
}): Promise<Record<string, Sample & { tokenBytes: number }>> {
  return benchSubjects(
    [
      ['peer: bare Fastify + @peculiar/x509 (no auth, no storage, no audit)', 'cert_ceiling_child.ts', []],
      ['Latchkey POST /workload/certificate (Basic, SQLite, audited)', 'idp_child.ts', ['certificate']],
    ],
    options,
  );
}

/** Each subject in its own child process; interleaved rounds; medians. */
async function benchSubjects(
  subjects: [string, string, string[]][],
  options: { duration: number; rounds: number; connections: number },
): Promise<Record<string, Sample & { tokenBytes: number }>> {
  const children = new Map<string, Child>();
  for (const [name, script, args] of subjects) children.set(name, await start(script, args));
  const samples = new Map<string, Sample[]>(subjects.map(([n]) => [n, []]));
  try {
    // Interleave rounds so drift on a shared machine hits every subject alike; report medians.
    for (let round = 0; round < options.rounds; round++) {
      for (const [name] of subjects)
        samples.get(name)!.push(await measure(children.get(name)!, options.duration, options.connections));
    }
  } finally {
    for (const c of children.values()) await stop(c);
  }
  const out: Record<string, Sample & { tokenBytes: number }> = {};
  for (const [name] of subjects) {
    const s = samples.get(name)!;
    out[name] = {
      rps: median(s.map((x) => x.rps)),
      p50: median(s.map((x) => x.p50)),
      p99: median(s.map((x) => x.p99)),
      cores: median(s.map((x) => x.cores)),
      perCore: median(s.map((x) => x.perCore)),
      non2xx: s.reduce((a, x) => a + x.non2xx, 0),
      tokenBytes: children.get(name)!.target.tokenBytes,
    };
  }
  return out;
}
