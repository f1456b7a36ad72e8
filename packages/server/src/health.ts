import type { Clock } from '@latchkey/protocol';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { KeyRing } from './keys/key_ring.ts';
import type { TokenPolicy } from './policy/token_policy.ts';
import type { Storage } from './storage/ports.ts';

export interface HealthDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  storage: Pick<Storage, 'ping' | 'setSetting' | 'feedNotificationsConnected'>;
  keys: Pick<KeyRing, 'ready'>;
  /** The IdP's own policy decisions: not ready while the newest bundle could not be taken (they fail closed). */
  tokenPolicy: Pick<TokenPolicy, 'health' | 'reload'>;
  /** True once the process is shutting down: not ready, so load balancers stop sending, while requests are still served. */
  draining: () => boolean;
}

/**
 * GET /healthz: the process answers (a liveness probe: restart it when this fails). GET /readyz:
 * storage reachable and writable, a signing key loaded, the policy engine holding the newest
 * bundle (a replica whose token policy is broken denies every token and must leave the load
 * balancer), and — on PostgreSQL — the notification connection up, without which revocations made
 * at other replicas would reach this replica's feed subscribers late. Not ready while draining.
 */
export function registerHealth(app: FastifyInstance, deps: HealthDeps): void {
  // One write at most every two seconds, however often probes come.
  let last: { at: number; result: Promise<void> } | undefined;
  const writeProbe = (): Promise<void> => {
    const now = deps.clock.now();
    if (!last || now - last.at > 2000)
      last = { at: now, result: deps.storage.setSetting('readiness_probe', new Date(now).toISOString()) };
    return last.result;
  };
  const tags = ['health'];
  app.get(
    '/healthz',
    {
      config: { credential: 'none' },
      schema: { tags, summary: 'the process is up', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );
  const Readiness = Type.Object({
    status: Type.Enum(['ready', 'not_ready', 'draining']),
    checks: Type.Record(Type.String(), Type.Enum(['ok', 'failed'])),
  });
  app.get(
    '/readyz',
    {
      config: { credential: 'none' },
      schema: {
        tags,
        summary:
          'whether a load balancer should send requests here (storage writable, keys loaded, policy usable, not draining)',
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      if (deps.draining()) return reply.code(503).send({ status: 'draining', checks: {} });
      const checks: Record<string, 'ok' | 'failed'> = {
        storage: 'ok',
        keys: deps.keys.ready ? 'ok' : 'failed',
        policy: 'ok',
        feed: deps.storage.feedNotificationsConnected() ? 'ok' : 'failed',
      };
      try {
        await deps.storage.ping();
        // Reachable is not enough: a full disk answers reads and refuses every write.
        await writeProbe();
      } catch {
        checks.storage = 'failed';
      }
      // A broken policy is retried here too (the engine was replaced after the trap).
      if (!deps.tokenPolicy.health.ok) await deps.tokenPolicy.reload().catch(() => undefined);
      if (!deps.tokenPolicy.health.ok) checks.policy = 'failed';
      const ready = Object.values(checks).every((c) => c === 'ok');
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
    },
  );
}
