// Runs in a worker thread (see bundle_validator.ts): Cedar validation off the IdP's event loop.
import { parentPort } from 'node:worker_threads';
import { withCedar } from '@latchkey/policy';
import { validateBundle } from './policy_validator.ts';

parentPort!.on(
  'message',
  (m: { id: number; bundle: Parameters<typeof validateBundle>[0]; options: Parameters<typeof validateBundle>[1] }) => {
    try {
      parentPort!.postMessage({ id: m.id, report: validateBundle(m.bundle, m.options) });
    } catch (err) {
      parentPort!.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
    }
  },
);

// Loaded and warmed up (cedar-wasm instantiated): the time budget starts from here, not from spawn.
withCedar((c) => c.getCedarVersion());
parentPort!.postMessage({ ready: true });
