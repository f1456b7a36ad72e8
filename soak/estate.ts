import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  type NginxBalancer,
  parsePrometheus,
  type PostgresCluster,
  type ServedCli,
  serveCli,
  startNginxBalancer,
  startPostgresCluster,
} from '@latchkey/testkit';

/** One IdP replica: a `latchkey serve` process on a fixed loopback port, restartable on it. */
export class Replica {
  served: ServedCli | undefined;
  /** Times it was started (1 + restarts). */
  starts = 0;
  readonly port: number;
  private readonly env: Record<string, string>;

  constructor(port: number, env: Record<string, string>) {
    this.port = port;
    this.env = env;
  }

  get pid(): number | undefined {
    return this.served?.child.exitCode === null ? this.served.child.pid : undefined;
  }

  async start(): Promise<void> {
    this.served = await serveCli({ ...this.env, LATCHKEY_PORT: String(this.port) });
    this.starts++;
  }

  /** SIGKILL: no drain, no flush — what a crash or an OOM kill does. */
  async kill(): Promise<void> {
    const s = this.served;
    if (!s || s.child.exitCode !== null) return;
    s.child.kill('SIGKILL');
    await s.exited;
  }

  /** SIGTERM and wait (the graceful path: drain, flush the audit). */
  async stop(): Promise<void> {
    const s = this.served;
    if (!s || s.child.exitCode !== null) return;
    s.child.kill('SIGTERM');
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  }

  /** Resident memory now (MiB), from /proc. */
  rssMiB(): number | undefined {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  /** GET /metrics straight at the replica: `name{labels}` → value. */
  async metrics(adminToken: string): Promise<Map<string, number>> {
    const res = await fetch(`http://127.0.0.1:${this.port}/metrics`, {
      headers: { authorization: `Bearer ${adminToken}` },
      signal: AbortSignal.timeout(5000),
    });
    return parsePrometheus(await res.text());
  }

  /** GET /readyz straight at the replica (not through the balancer). */
  async readiness(): Promise<{ status: number; body: unknown }> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/readyz`, { signal: AbortSignal.timeout(2000) });
      return { status: res.status, body: await res.json() };
    } catch (err) {
      return { status: 0, body: (err as Error).message };
    }
  }
}

/** PostgreSQL, N IdP replicas on it and nginx in front: what docs/operations.md describes. */
export interface Estate {
  pg: PostgresCluster;
  /** The database the replicas share. */
  databaseUrl: string;
  replicas: Replica[];
  nginx: NginxBalancer;
  /** The issuer: nginx's URL, the one every replica is configured with. */
  issuer: string;
  adminToken: string;
  close(): Promise<void>;
}

export interface EstateOptions {
  replicas: number;
  /** Seconds between key rotations. */
  keyRotationInterval: number;
  /** Extra LATCHKEY_* settings for every replica. */
  env?: Record<string, string>;
}

export async function startEstate(o: EstateOptions): Promise<Estate> {
  const pg = await startPostgresCluster();
  const cleanup: (() => Promise<void>)[] = [() => pg.close()];
  try {
    const databaseUrl = pg.url.replace(/\/postgres$/, '/latchkey');
    const { default: pgLib } = await import('pg');
    const admin = new pgLib.Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query('CREATE DATABASE latchkey');
    await admin.end();

    const ports = await Promise.all(Array.from({ length: o.replicas }, () => freePort()));
    const nginxPort = await freePort();
    const issuer = `http://127.0.0.1:${nginxPort}`;
    const adminToken = randomBytes(32).toString('base64url');
    const dataRoot = mkdtempSync(join(tmpdir(), 'latchkey-soak-'));
    cleanup.push(async () => rmSync(dataRoot, { recursive: true, force: true }));
    const masterKey = randomBytes(32).toString('base64');
    const rotation = o.keyRotationInterval;
    const env = (i: number): Record<string, string> => ({
      LATCHKEY_TLS: 'false',
      LATCHKEY_HOST: '127.0.0.1',
      LATCHKEY_ISSUER: issuer,
      LATCHKEY_DATABASE_URL: databaseUrl,
      LATCHKEY_DATA_DIR: join(dataRoot, `replica-${i}`),
      LATCHKEY_MASTER_KEY: masterKey,
      LATCHKEY_ADMIN_TOKEN: adminToken,
      LATCHKEY_TRUSTED_PROXIES: '127.0.0.1',
      // Rotation every `rotation` seconds: announced a third of the way before, JWKS cacheable 5 s.
      LATCHKEY_KEY_ROTATION_INTERVAL: String(rotation),
      LATCHKEY_KEY_ANNOUNCE_WINDOW: String(Math.max(9, Math.floor(rotation / 3))),
      LATCHKEY_KEY_CHECK_INTERVAL: '2',
      LATCHKEY_JWKS_MAX_AGE: '5',
      LATCHKEY_SHUTDOWN_GRACE: '0',
      LATCHKEY_LOG_LEVEL: 'warn',
      ...o.env,
    });
    const replicas = ports.map((p, i) => new Replica(p, env(i)));
    cleanup.push(async () => void (await Promise.all(replicas.map((r) => r.stop()))));
    // The first alone creates the schema and the first keys; the others join it.
    await replicas[0]!.start();
    await Promise.all(replicas.slice(1).map((r) => r.start()));
    const nginx = await startNginxBalancer(
      ports.map((p) => `127.0.0.1:${p}`),
      nginxPort,
    );
    cleanup.push(() => nginx.close());
    return {
      pg,
      databaseUrl,
      replicas,
      nginx,
      issuer,
      adminToken,
      async close() {
        for (const c of cleanup.reverse()) await c().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    throw err;
  }
}
