/** Child side of the benchmark protocol: announce the target, answer CPU readings, stop on request. */
export interface Target {
  url: string;
  authorization: string;
  body: string;
  /** Content type of `body` (default: form). */
  contentType?: string;
  tokenBytes: number;
  /** Bodies to send in turn instead of `body` (each request the next one). */
  bodies?: string[];
  /** Issuer base URL and the CA that signed its certificate, for benchmarks that need more than /token. */
  issuer?: string;
  ca?: string;
}

export function reportCpuOnRequest(target: Target, stop: () => Promise<void>): void {
  process.send?.({ kind: 'ready', target });
  process.on('message', (msg: { kind: string }) => {
    if (msg.kind === 'cpu') process.send?.({ kind: 'cpu', usage: process.cpuUsage() });
    if (msg.kind === 'memory') {
      globalThis.gc?.();
      process.send?.({ kind: 'memory', rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed });
    }
    if (msg.kind === 'stop') void stop().then(() => process.exit(0));
  });
}

/** Asks a forked child (one that called {@link reportCpuOnRequest}) for its CPU seconds so far. */
export function cpuSecondsOf(proc: import('node:child_process').ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: { kind: string; usage: NodeJS.CpuUsage }) => {
      if (m.kind !== 'cpu') return;
      proc.off('message', on);
      resolve((m.usage.user + m.usage.system) / 1e6);
    };
    proc.on('message', on);
    proc.send({ kind: 'cpu' });
  });
}

/** This process's heap plus its typed arrays (which live outside the JS heap), after two GCs (`--expose-gc`). */
export function heapAndBuffers(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
