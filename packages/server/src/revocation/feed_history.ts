/** One sample of this replica's feed: open streams and entries they have not been sent yet. */
export interface FeedSample {
  /** Epoch milliseconds. */
  time: number;
  streams: number;
  lag: number;
}

/**
 * The recent history of this replica's feed streams and lag, sampled in memory every `everyMs`
 * (default 10 s) for `keep` samples (default 6 hours): what the console's dashboard draws. It
 * is one replica's view, like its metrics; Prometheus keeps the fleet's longer.
 */
export class FeedHistory {
  private readonly samples: FeedSample[] = [];
  private readonly keep: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    read: () => Promise<{ streams: number; lag: number }>,
    now: () => number,
    options: { everyMs?: number; keep?: number } = {},
  ) {
    this.keep = options.keep ?? 2160;
    const sample = () =>
      read().then(
        (s) => this.add({ time: now(), ...s }),
        () => {},
      );
    this.timer = setInterval(sample, options.everyMs ?? 10_000);
    this.timer.unref();
    void sample();
  }

  add(sample: FeedSample): void {
    this.samples.push(sample);
    if (this.samples.length > this.keep) this.samples.splice(0, this.samples.length - this.keep);
  }

  /** Samples taken from `from` through `to` (epoch ms), oldest first. */
  between(from: number, to: number): FeedSample[] {
    return this.samples.filter((s) => s.time >= from && s.time <= to);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
