// Runs in a worker thread (see bundle_validator.ts): Cedar validation off the IdP's event loop.
import { parentPort } from 'node:worker_threads';
import { withCedar } from '@latchkey/policy';
import { validateWithinLimits } from './policy_validator.ts';

parentPort!.on(
  'message',
  (m: {
    id: number;
    bundle: Parameters<typeof validateWithinLimits>[0];
    options: Parameters<typeof validateWithinLimits>[1];
  }) => {
    try {
      // BundleValidator checked the limits before sending the bundle here.
      parentPort!.postMessage({ id: m.id, report: validateWithinLimits(m.bundle, m.options) });
    } catch (err) {
      parentPort!.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
    }
  },
);

// Loaded and warmed up (cedar-wasm instantiated): the time budget starts from here, not from spawn.
withCedar((c) => c.getCedarVersion());
parentPort!.postMessage({ ready: true });
