// Issue 15: password sign-ins per second (the scrypt hash dominates: the bare hash rate is measured
// beside it in the same run) and refresh-token rotations per second, on SQLite and PostgreSQL.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, scrypt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Browser, type TestIdp, tlsFetch } from '@latchkey/testkit';
import { cpuSecondsOf, type Target } from './cpu.ts';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const PASSWORD = 'benchmark passphrase, long enough';
const REDIRECT = 'http://127.0.0.1/callback';

async function start(databaseUrl?: string): Promise<{ proc: ChildProcess; target: Target }> {
  const proc = fork(here('login_child.ts'), databaseUrl ? [databaseUrl] : [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: process.env.BENCH_SOURCE ? process.env.NODE_OPTIONS : '' },
  });
  const target = await new Promise<Target>((resolve, reject) => {
    proc.once('message', (m: { target: Target }) => resolve(m.target));
    proc.once('exit', (code) => reject(new Error(`login_child exited ${code}`)));
  });
  return { proc, target };
}

const cpuOf = cpuSecondsOf;

async function stop(proc: ChildProcess): Promise<void> {
  const exited = new Promise((r) => proc.once('exit', r));
  proc.send({ kind: 'stop' });
  await exited;
}

/** One complete sign-in: /authorize, the password, the code at /token. Returns the refresh token. */
async function signIn(t: Pick<TestIdp, 'issuer' | 'fetch'>, user: string): Promise<string> {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${t.issuer}/authorize`);
  url.search = new URLSearchParams({
    client_id: 'bench-app',
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  const back = await new Browser(t as TestIdp).signIn(url, user, PASSWORD);
  const code = new URL(back.headers.get('location') ?? 'x:').searchParams.get('code');
  if (!code) throw new Error(`sign-in failed: ${back.status}`);
  const res = await t.fetch(`${t.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: 'bench-app',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    }),
  });
  const body = (await res.json()) as { refresh_token: string };
  return body.refresh_token;
}

async function rotate(t: Pick<TestIdp, 'issuer' | 'fetch'>, token: string): Promise<string> {
  const res = await t.fetch(`${t.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'bench-app', refresh_token: token }),
  });
  if (res.status !== 200) throw new Error(`refresh: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { refresh_token: string }).refresh_token;
}

/** `workers` loops doing `op` for `seconds`; rate and the server's CPU per operation. */
async function measure(proc: ChildProcess, seconds: number, workers: number, op: (w: number) => Promise<void>) {
  const cpu0 = await cpuOf(proc);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let n = 0;
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      while (performance.now() < end) {
        const s = performance.now();
        await op(w);
        lat.push(performance.now() - s);
        n++;
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu = (await cpuOf(proc)) - cpu0;
  lat.sort((a, b) => a - b);
  return {
    perSecond: n / wall,
    perCpuSecond: n / cpu,
    cores: cpu / wall,
    p50: lat[Math.floor(lat.length / 2)] ?? 0,
    n,
  };
}

/** The bare hash at the same parameters, on libuv's pool as the IdP runs it: hashes per second with `parallel` at once. */
async function bareHash(seconds: number, parallel: number) {
  const options = { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 };
  const one = () =>
    new Promise<void>((resolve, reject) =>
      scrypt(PASSWORD, randomBytes(16), 32, options, (err) => (err ? reject(err) : resolve())),
    );
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (performance.now() < end) {
        await one();
        n++;
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  return { perSecond: n / wall, perCpuSecond: n / ((used.user + used.system) / 1e6) };
}

export async function benchLogin(options: { duration: number; databaseUrl?: string }) {
  const out: Record<string, { perSecond: number; perCpuSecond: number; cores?: number; p50?: number }> = {};
  out['bare scrypt (N=2^17, r=8, p=1), 1 at a time'] = await bareHash(options.duration, 1);
  out['bare scrypt, 4 at once (libuv pool)'] = await bareHash(options.duration, 4);
  const backends: [string, string | undefined][] = [['SQLite', undefined]];
  if (options.databaseUrl) backends.push(['PostgreSQL', options.databaseUrl]);
  for (const [name, url] of backends) {
    const { proc, target } = await start(url);
    const t = { issuer: target.issuer as string, fetch: tlsFetch(target.ca) };
    try {
      await signIn(t, 'bench0');
      out[`sign-in (authorize + password + code → tokens), ${name}, 4 at once`] = await measure(
        proc,
        options.duration,
        4,
        async (w) => void (await signIn(t, `bench${w}`)),
      );
      const chains = await Promise.all(Array.from({ length: 8 }, (_, i) => signIn(t, `bench${i}`)));
      out[`refresh-token rotation, ${name}, 8 chains`] = await measure(proc, options.duration, 8, async (w) => {
        chains[w] = await rotate(t, chains[w] as string);
      });
    } finally {
      await stop(proc);
    }
  }
  return out;
}
