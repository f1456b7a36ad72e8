import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './test_idp.ts';

/**
 * The start of an nginx configuration that runs unprivileged from `dir`: its logs, pid and
 * temporary folders there, no access log; the caller adds its blocks and closes `http {`.
 */
export function nginxPreamble(dir: string, connections = 256): string {
  return `worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections ${connections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;`;
}

/**
 * nginx as the load balancer in front of IdP replicas: the configuration docs/operations.md
 * recommends. Passive health checks (open-source nginx has no active ones): a replica that
 * refuses or drops a connection is skipped for `fail_timeout`, and a request whose connection
 * failed before it was sent is passed to the next replica (POSTs are never resent once sent:
 * `/token` is not idempotent). Server-Sent Events pass unbuffered, without a read timeout shorter
 * than the feed's heartbeat.
 */
export function nginxBalancerConf(dir: string, port: number, upstreams: readonly string[]): string {
  const servers = upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=2s;`).join('\n');
  return `${nginxPreamble(dir, 4096)}
  upstream latchkey {
${servers}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://latchkey;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_connect_timeout 1s;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 3;
      # The revocation feed: events pass as they are written; the IdP's heartbeat (15 s) keeps it open.
      proxy_buffering off;
      proxy_read_timeout 60s;
    }
  }
}
`;
}

export interface NginxBalancer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  process: ChildProcess;
  /** nginx's error log so far. */
  errorLog(): string;
  close(): Promise<void>;
}

/** Starts Debian's nginx on a free loopback port balancing over `upstreams` (`host:port`). */
export async function startNginxBalancer(upstreams: readonly string[], port?: number): Promise<NginxBalancer> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-nginx-'));
  mkdirSync(join(dir, 'logs'));
  const p = port ?? (await freePort());
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxBalancerConf(dir, p, upstreams));
  const child = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(p, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const errorLog = () => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  return {
    url: `http://127.0.0.1:${p}`,
    port: p,
    process: child,
    errorLog,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGQUIT');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
