import type { FastifyInstance } from 'fastify';
import type { KeyRing } from './keys/key_ring.ts';
import type { Storage } from './storage/ports.ts';

/** GET /healthz: the process answers. GET /readyz: storage reachable and a signing key loaded. */
export function registerHealth(app: FastifyInstance, deps: { storage: Pick<Storage, 'ping'>; keys: Pick<KeyRing, 'ready'> }): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const checks: Record<string, 'ok' | 'failed'> = { storage: 'ok', keys: deps.keys.ready ? 'ok' : 'failed' };
    try {
      await deps.storage.ping();
    } catch {
      checks.storage = 'failed';
    }
    const ready = Object.values(checks).every((c) => c === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
}
