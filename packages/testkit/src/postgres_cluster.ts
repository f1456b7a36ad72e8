import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './test_idp.ts';

const exec = promisify(execFile);

/** The newest PostgreSQL server binaries Debian installed (`/usr/lib/postgresql/<major>/bin`), if any. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((d) => existsSync(join(root, d, 'bin', 'initdb')))
    .sort((a, b) => Number(a) - Number(b));
  const major = majors.at(-1);
  return major === undefined ? undefined : join(root, major, 'bin');
}

/** A PostgreSQL server of its own (a throwaway cluster) that a test may stop and restart. */
export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  url: string;
  port: number;
  dir: string;
  /** The server's own log. */
  log: string;
  /** Stops the server (`fast`: rolls back open transactions and disconnects every client). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops and starts it; returns how long it took (ms). */
  restart(): Promise<number>;
  /** Stops it and deletes its files. */
  close(): Promise<void>;
}

/**
 * Creates and starts a PostgreSQL cluster in a temporary folder on a free loopback port (Debian's
 * package; run as the `postgres` user when this process is root, since PostgreSQL refuses to run
 * as root). Used where a test restarts the database under a running IdP, which the shared test
 * server (`.ci/postgres.sh`) must not suffer.
 */
export async function startPostgresCluster(
  options: { settings?: Record<string, string> } = {},
): Promise<PostgresCluster> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL server binaries are not installed (Debian: postgresql)');
  const root = process.getuid?.() === 0;
  const asPg = (cmd: string, args: string[]) =>
    (root ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]) as [string, string[]];
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-'));
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
    chownSync(data, uid, gid);
  }
  const port = await freePort();
  const log = join(dir, 'server.log');
  const run = async (cmd: string, args: string[]): Promise<void> => {
    const [c, a] = asPg(join(bin, cmd), args);
    await exec(c, a).catch((err: Error & { stderr?: string }) => {
      throw new Error(`${cmd} failed: ${err.stderr || err.message}`);
    });
  };
  await run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    max_connections: '300',
    ...options.settings,
  };
  const opts = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const start = () => run('pg_ctl', ['-D', data, '-l', log, '-w', '-o', opts, 'start']);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    log,
    stop,
    start,
    async restart() {
      const t0 = Date.now();
      await stop();
      await start();
      return Date.now() - t0;
    },
    async close() {
      await stop().catch(() => undefined); // already stopped
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
