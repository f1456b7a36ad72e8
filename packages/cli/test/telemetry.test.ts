import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { createAuthorizer } from '@latchkey/sdk/authorize';
import { createTokenClient } from '@latchkey/sdk/token-client';
import { createVerifier } from '@latchkey/sdk/verify';
import { freePort, serveCli, type ServedCli } from '@latchkey/testkit';
import { tracesWanted } from '../src/telemetry.ts';

/** One span as OTLP/HTTP JSON carries it (ids in hex). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}
const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v && Object.values(v)[0];
};

test('traces are off unless the standard environment asks for them', () => {
  assert.equal(tracesWanted({}), undefined);
  assert.equal(tracesWanted({ OTEL_SERVICE_NAME: 'x' }), undefined);
  assert.equal(tracesWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), 'otlp');
  assert.equal(tracesWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }), 'otlp');
  assert.equal(tracesWanted({ OTEL_TRACES_EXPORTER: 'console' }), 'console');
  assert.equal(tracesWanted({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x' }), undefined);
  assert.equal(tracesWanted({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }), undefined);
});

describe('OpenTelemetry: the IdP exports OTLP traces a service continues, and its logs carry the trace id', () => {
  let receiver: Server;
  const received: { service: string; span: OtlpSpan }[] = [];
  let idp: ServedCli;
  let dir: string;
  let issuer: string;
  const adminToken = randomBytes(32).toString('base64url');
  const local = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(local)] });

  before(async () => {
    // An OTLP/HTTP collector on loopback: what the IdP's exporter posts to.
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        assert.equal(req.url, '/v1/traces');
        const doc = JSON.parse(body) as {
          resourceSpans: {
            resource: { attributes: OtlpSpan['attributes'] };
            scopeSpans: { spans: OtlpSpan[] }[];
          }[];
        };
        for (const rs of doc.resourceSpans) {
          const service = String(
            Object.values(rs.resource.attributes.find((a) => a.key === 'service.name')?.value ?? {})[0],
          );
          for (const ss of rs.scopeSpans) for (const span of ss.spans) received.push({ service, span });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const otlp = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    dir = mkdtempSync(join(tmpdir(), 'latchkey-otel-'));
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    idp = await serveCli({
      LATCHKEY_TLS: 'false',
      LATCHKEY_ISSUER: issuer,
      LATCHKEY_PORT: String(port),
      LATCHKEY_DATA_DIR: dir,
      LATCHKEY_ADMIN_TOKEN: adminToken,
      LATCHKEY_ACCESS_LOG: 'true',
      LATCHKEY_LOG_LEVEL: 'info',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      OTEL_SERVICE_NAME: 'idp-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    // This process is the service: its own SDK provider (W3C propagation, AsyncLocalStorage context).
    provider.register();
  });
  after(async () => {
    idp?.child.kill('SIGTERM');
    await idp?.exited;
    await provider.shutdown();
    trace.disable();
    receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a token request, a verification, a decision, an introspection and a feed delivery', {
    timeout: 30_000,
  }, async () => {
    const admin = (path: string, body: unknown) =>
      fetch(`${issuer}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const reg = (await (
      await admin('/register', { client_id: 'orders', audiences: ['https://orders.internal'] })
    ).json()) as { client_id: string; client_secret: string };
    assert.equal(
      (
        await admin('/admin/policy', {
          schema: {
            's.cedarschema': 'entity Service; entity Doc; action read appliesTo { principal: Service, resource: Doc };',
          },
          policies: { 'read-all': 'permit(principal, action == Action::"read", resource);' },
        })
      ).status,
      201,
    );
    const credentials = { clientId: reg.client_id, clientSecret: reg.client_secret };
    const tokens = createTokenClient({ issuer, ...credentials });
    const verifier = await createVerifier({ issuer, audience: 'https://orders.internal', credentials });
    const authorizer = await createAuthorizer({ issuer, credentials });
    local.reset();

    // One incoming request at the service, as its own instrumentation would have started it.
    const root = provider.getTracer('test').startSpan('GET /orders/42', { kind: SpanKind.SERVER });
    const token = await context.with(trace.setSpan(context.active(), root), async () => {
      const t = await tokens.getToken({ audience: 'https://orders.internal' });
      await verifier.verify(t);
      authorizer.authorize({ principal: 'Service::"orders"', action: 'Action::"read"', resource: 'Doc::"42"' });
      return t;
    });
    root.end();
    const traceId = root.spanContext().traceId;
    const localSpans = local.getFinishedSpans();
    const named = (n: string) => localSpans.find((s) => s.name === n);
    const client = named('latchkey.token_client.request')!;
    assert.equal(client.spanContext().traceId, traceId);
    assert.equal(named('latchkey.verify')!.spanContext().traceId, traceId);
    assert.equal(named('latchkey.verify')!.attributes['latchkey.client_id'], 'orders');
    assert.equal(named('latchkey.authorize')!.attributes['latchkey.decision'], 'allow');

    // Introspection, with a traceparent of its own; then a revocation delivered on the verifier's feed.
    const introspectParent = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
    const basic = `Basic ${Buffer.from(`${reg.client_id}:${reg.client_secret}`).toString('base64')}`;
    const form = { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' };
    assert.equal(
      (
        await fetch(`${issuer}/introspect`, {
          method: 'POST',
          headers: { ...form, traceparent: introspectParent },
          body: `token=${token}`,
        })
      ).status,
      200,
    );
    assert.equal(
      (await fetch(`${issuer}/revoke`, { method: 'POST', headers: form, body: `token=${token}` })).status,
      200,
    );

    const deadline = Date.now() + 10_000;
    const find = (pred: (s: OtlpSpan) => boolean) => received.find((r) => pred(r.span));
    while (
      !(
        find((s) => s.name === 'latchkey.token') &&
        find((s) => s.name === 'latchkey.introspect') &&
        find((s) => s.name === 'latchkey.feed.deliver')
      ) &&
      Date.now() < deadline
    )
      await new Promise((r) => setTimeout(r, 100));
    // The IdP's server span continues the service's trace: its parent is the token client's span.
    const server = find((s) => s.name === 'POST /token' && s.traceId === traceId);
    assert.ok(server, `no POST /token span in trace ${traceId}: ${received.map((r) => r.span.name).join(', ')}`);
    assert.equal(server.service, 'idp-under-test');
    assert.equal(server.span.kind, 2 /* SERVER */);
    assert.equal(server.span.parentSpanId, client.spanContext().spanId);
    assert.equal(attr(server.span, 'http.response.status_code'), 200);
    const issue = find((s) => s.name === 'latchkey.token' && s.traceId === traceId)!;
    assert.equal(issue.span.parentSpanId, server.span.spanId);
    assert.equal(attr(issue.span, 'latchkey.grant_type'), 'client_credentials');
    assert.equal(attr(issue.span, 'latchkey.client_id'), 'orders');
    const introspect = find((s) => s.name === 'latchkey.introspect')!;
    assert.equal(introspect.span.traceId, 'ab'.repeat(16));
    assert.equal(attr(introspect.span, 'latchkey.token.active'), true);
    const deliver = find((s) => s.name === 'latchkey.feed.deliver')!;
    assert.ok(Number(attr(deliver.span, 'latchkey.feed.streams')) >= 1);
    // No span carries a token or a secret.
    const everything = JSON.stringify(received);
    assert.ok(!everything.includes(token) && !everything.includes(reg.client_secret));

    // The IdP's JSON log lines for the request carry its trace id; never the token or the secret.
    await new Promise((r) => setTimeout(r, 200));
    const line = idp
      .out()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'request' && l.path === '/token' && l.trace_id === traceId);
    assert.ok(line, 'the access log line of the token request names its trace');
    assert.equal(line.span_id, server.span.spanId);
    assert.ok(!idp.out().includes(token) && !idp.out().includes(reg.client_secret));
    verifier.close();
    authorizer.close();
  });
});
