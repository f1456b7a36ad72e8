import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PolicyBundleContent } from '@latchkey/protocol';
import { limitProblems, type ValidationReport } from './policy_validator.ts';

export interface BundleValidatorOptions {
  /** How long one validation may take before the worker is stopped and the bundle refused. */
  timeoutMs: number;
}

type Options = { reserved?: { fragment: string; namespace: string } };

/**
 * Validates policy bundles in a worker thread, one at a time, with a time budget: a bundle whose
 * validation is slow (a deep entity hierarchy, a huge schema) is refused when the budget runs out
 * and the worker replaced, instead of freezing the IdP's event loop; a cedar-wasm trap inside the
 * worker costs only that worker. The size and depth limits are checked here first, so a bundle
 * past them never reaches a worker at all.
 */
export class BundleValidator {
  private worker: { w: Worker; ready: Promise<void> } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 0;
  private closed = false;
  private stopped = 0;
  private readonly o: BundleValidatorOptions;

  constructor(o: BundleValidatorOptions) {
    this.o = o;
  }

  validate(bundle: PolicyBundleContent, options: Options = {}): Promise<ValidationReport> {
    const limits = limitProblems(bundle);
    if (limits.length > 0) return Promise.resolve({ ok: false, errors: limits, warnings: [] });
    const run = this.queue.then(() => this.run(bundle, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Validations stopped for exceeding the time budget, since start. */
  get timeouts(): number {
    return this.stopped;
  }

  private spawn(): { w: Worker; ready: Promise<void> } {
    // The worker is this folder's validation_worker, as .ts under tsx and .js once built.
    const ext = extname(fileURLToPath(import.meta.url));
    const entry = new URL(`./validation_worker${ext}`, import.meta.url);
    // Under tsx (tests, development) the worker registers the TypeScript loader before loading
    // its entry (Node 20 does not pass --import hooks to workers in time).
    const w =
      ext === '.ts'
        ? new Worker(
            `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); });`,
            { eval: true },
          )
        : new Worker(entry);
    w.unref();
    w.on('error', () => undefined);
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: { ready?: boolean }) => {
        if (!m.ready) return;
        w.off('message', onMessage);
        resolve();
      };
      w.on('message', onMessage);
      w.once('exit', () => reject(new Error('the policy validation worker did not start')));
    });
    ready.catch(() => undefined);
    return { w, ready };
  }

  private async run(bundle: PolicyBundleContent, options: Options): Promise<ValidationReport> {
    if (this.closed) throw new Error('the policy validator is closed');
    const current = (this.worker ??= this.spawn());
    await current.ready;
    const w = current.w;
    const id = ++this.nextId;
    return new Promise<ValidationReport>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('exit', onExit);
      };
      const discard = () => {
        if (this.worker === current) this.worker = undefined;
        void w.terminate();
      };
      const timer = setTimeout(() => {
        done();
        discard();
        this.stopped++;
        const s = Math.round(this.o.timeoutMs / 100) / 10;
        resolve({
          ok: false,
          warnings: [],
          errors: [
            {
              source: 'bundle',
              kind: 'entities',
              message: `validation took longer than ${s} s and was stopped`,
              help: 'reduce the size of the bundle or the depth of its entity hierarchy',
            },
          ],
        });
      }, this.o.timeoutMs);
      const onMessage = (m: { id?: number; report?: ValidationReport; error?: string }) => {
        if (m.id !== id) return;
        done();
        if (m.report) resolve(m.report);
        else {
          discard();
          reject(new Error(`policy validation failed: ${m.error}`));
        }
      };
      const onExit = () => {
        done();
        if (this.worker === current) this.worker = undefined;
        reject(new Error('the policy validation worker stopped'));
      };
      w.on('message', onMessage);
      w.once('exit', onExit);
      w.postMessage({ id, bundle, options });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker?.w.terminate();
    this.worker = undefined;
  }
}
