import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort, nginxPreamble } from '@latchkey/testkit';
import { type Estate, startEstate } from './sidecar_fixture.ts';

const IDENTITY = ['Sub', 'Client-Id', 'Scope', 'Roles', 'Act', 'Peer'];

/** Resolves once something accepts connections on the port. */
async function listening(port: number, proc: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${port}`);
}

/** nginx with auth_request in front of the upstream, asking the sidecar (docs/sidecar-nginx.md shows the same block). */
function nginxConf(dir: string, port: number, auth: string, upstream: string): string {
  const sets = IDENTITY.map(
    (h) =>
      `      auth_request_set $lk_${h.toLowerCase().replace('-', '_')} $upstream_http_x_latchkey_${h.toLowerCase().replace('-', '_')};`,
  ).join('\n');
  const headers = IDENTITY.map(
    (h) => `      proxy_set_header X-Latchkey-${h} $lk_${h.toLowerCase().replace('-', '_')};`,
  ).join('\n');
  return `${nginxPreamble(dir)}
  server {
    listen 127.0.0.1:${port};
    location = /_latchkey_auth {
      internal;
      proxy_pass ${auth}/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Real-IP $remote_addr;
    }
    location @latchkey_401 {
      add_header WWW-Authenticate $lk_challenge always;
      return 401;
    }
    location / {
      auth_request /_latchkey_auth;
      auth_request_set $lk_challenge $upstream_http_www_authenticate;
${sets}
      error_page 401 = @latchkey_401;
${headers}
      proxy_set_header Authorization "";
      proxy_pass ${upstream};
    }
  }
}
`;
}

function caddyfile(port: number, auth: string, upstream: string): string {
  return `{
  admin off
  auto_https off
}
http://127.0.0.1:${port} {
  forward_auth ${auth.replace('http://', '')} {
    uri /auth
    copy_headers ${IDENTITY.map((h) => `X-Latchkey-${h}`).join(' ')}
  }
  request_header -Authorization
  reverse_proxy ${upstream.replace('http://', '')}
}
`;
}

describe('forward auth: real nginx (auth_request) and real Caddy (forward_auth) in front of the Python service', () => {
  let e: Estate;
  const proxies: Record<string, string> = {};
  const procs: ChildProcess[] = [];

  before(async () => {
    e = await startEstate();
    const api = e.sidecar.url as string;
    const nginxDir = join(e.dir, 'nginx');
    mkdirSync(nginxDir);
    const nginxPort = await freePort();
    writeFileSync(join(nginxDir, 'nginx.conf'), nginxConf(nginxDir, nginxPort, api, e.upstream.url));
    const nginx = spawn('nginx', ['-p', nginxDir, '-c', join(nginxDir, 'nginx.conf'), '-g', 'daemon off;'], {
      stdio: 'inherit',
    });
    procs.push(nginx);
    await listening(nginxPort, nginx, 'nginx');
    proxies.nginx = `http://127.0.0.1:${nginxPort}`;

    const caddyDir = join(e.dir, 'caddy');
    mkdirSync(caddyDir);
    const caddyPort = await freePort();
    writeFileSync(join(caddyDir, 'Caddyfile'), caddyfile(caddyPort, api, e.upstream.url));
    const caddy = spawn('caddy', ['run', '--config', join(caddyDir, 'Caddyfile'), '--adapter', 'caddyfile'], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: { ...process.env, HOME: caddyDir, XDG_DATA_HOME: caddyDir, XDG_CONFIG_HOME: caddyDir },
    });
    procs.push(caddy);
    await listening(caddyPort, caddy, 'caddy');
    proxies.caddy = `http://127.0.0.1:${caddyPort}`;
  });
  after(async () => {
    for (const p of procs) p.kill();
    await e?.close();
  });

  for (const name of ['nginx', 'caddy']) {
    test(`${name}: allows and denies exactly as the Cedar policy says, with the identity and never forged headers`, async () => {
      const base = proxies[name] as string;
      const checkout = { authorization: `Bearer ${await e.token('checkout')}` };
      const evil = { authorization: `Bearer ${await e.token('evil')}` };
      const call = async (method: string, path: string, headers: Record<string, string> = {}) => {
        const r = await fetch(`${base}${path}`, { method, headers });
        const text = await r.text();
        return { status: r.status, headers: r.headers, body: text.startsWith('{') ? JSON.parse(text) : text };
      };
      const ok = await call('GET', '/tenants/acme/orders/1', {
        ...checkout,
        'X-Latchkey-Sub': 'admin',
        'X-Latchkey-Roles': 'admin',
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.headers['x-latchkey-sub'], 'checkout');
      assert.equal(ok.body.headers['x-latchkey-client-id'], 'checkout');
      assert.equal(ok.body.headers['x-latchkey-roles'], 'reader');
      assert.equal(ok.body.headers.authorization, undefined);

      const anonymous = await call('GET', '/tenants/acme/orders/1');
      assert.equal(anonymous.status, 401);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
      assert.equal(
        (await call('GET', '/tenants/acme/orders/1', { authorization: 'Bearer forged.token.here' })).status,
        401,
      );

      // Tenant isolation, owner-only cancel, unmatched routes.
      assert.equal((await call('GET', '/tenants/other/orders/1', checkout)).status, 403);
      assert.equal((await call('GET', '/tenants/acme/orders/1', evil)).status, 403);
      assert.equal((await call('GET', '/tenants/evil/orders/1', evil)).status, 200);
      assert.equal((await call('DELETE', '/tenants/acme/orders/9?owner=checkout', checkout)).status, 200);
      assert.equal((await call('DELETE', '/tenants/acme/orders/9?owner=evil', checkout)).status, 403);
      assert.equal((await call('GET', '/admin', checkout)).status, 403);
      const pub = await call('GET', '/health', { 'X-Latchkey-Sub': 'admin' });
      assert.equal(pub.status, 200);
      // nginx drops a header set to an empty value; Caddy forwards it empty. Either way no identity.
      assert.ok(!pub.body.headers['x-latchkey-sub'], 'a public route carries no identity, forged or not');
    });
  }

  test('the sidecar counted every decision by mode', async () => {
    const metrics = await (await fetch(`${e.sidecar.url}/metrics`)).text();
    assert.match(
      metrics,
      /latchkey_sidecar_requests_total\{mode="forward_auth",route="routes\/1",outcome="allowed"\} [1-9]/,
    );
    assert.match(
      metrics,
      /latchkey_sidecar_requests_total\{mode="forward_auth",route="routes\/1",outcome="denied"\} [1-9]/,
    );
    assert.ok(!readFileSync(join(e.dir, 'nginx', 'error.log'), 'utf8').includes('[emerg]'));
  });

  test('a request the sidecar cannot read is refused (never allowed by default)', async () => {
    const r = await fetch(`${e.sidecar.url}/auth`, { headers: { 'x-original-method': 'GET' } });
    assert.equal(r.status, 403);
    const ambiguous = await fetch(`${e.sidecar.url}/auth`, {
      headers: { 'x-original-method': 'GET', 'x-original-uri': '/tenants/acme/orders/%2e%2e/admin' },
    });
    assert.equal(ambiguous.status, 403);
  });
});
