/**
 * Counts hits per key within a sliding window, keeping at most `threshold` timestamps per key and
 * at most `maxKeys` keys (the least recently added go first), so memory stays bounded under a
 * flood of distinct keys. A key that reaches the threshold is reset: the next alert needs a new burst.
 */
export class WindowCounter {
  private readonly hits = new Map<string, { times: number[]; firstSeq: number[]; extra: Set<string> }>();
  private readonly threshold: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;

  constructor(threshold: number, windowMs: number, maxKeys = 50_000) {
    this.threshold = threshold;
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
  }

  /**
   * Adds a hit; returns the burst when this hit makes `threshold` within the window. `tag` values
   * (such as the client ids tried from one address) are collected for the finding.
   */
  add(
    key: string,
    timeMs: number,
    seq: number,
    tag?: string,
    weight = 1,
  ): { count: number; firstSeq: number; tags: string[] } | undefined {
    let h = this.hits.get(key);
    if (!h) {
      if (this.hits.size >= this.maxKeys) this.hits.delete(this.hits.keys().next().value as string);
      h = { times: [], firstSeq: [], extra: new Set() };
    } else {
      this.hits.delete(key); // re-insert: most recently used last
    }
    this.hits.set(key, h);
    while (h.times.length > 0 && h.times[0]! <= timeMs - this.windowMs) {
      h.times.shift();
      h.firstSeq.shift();
    }
    if (h.times.length === 0) h.extra.clear();
    // A counted event (several failures in one row) weighs its count, up to the threshold.
    for (let i = 0; i < Math.min(weight, this.threshold); i++) {
      h.times.push(timeMs);
      h.firstSeq.push(seq);
    }
    if (tag !== undefined && h.extra.size < 100) h.extra.add(tag);
    if (h.times.length < this.threshold) return undefined;
    const burst = { count: h.times.length, firstSeq: h.firstSeq[0]!, tags: [...h.extra] };
    this.hits.delete(key);
    return burst;
  }
}
