/**
 * Distinct values per key within a sliding window (the usernames one address tried, say), with
 * at most `maxValues` values per key and `maxKeys` keys, so memory stays bounded under a flood.
 */
export class DistinctWindow {
  private readonly keys = new Map<string, { seen: Map<string, number>; firstSeq: number }>();
  private readonly windowMs: number;
  private readonly maxValues: number;
  private readonly maxKeys: number;

  constructor(windowMs: number, maxValues: number, maxKeys = 50_000) {
    this.windowMs = windowMs;
    this.maxValues = maxValues;
    this.maxKeys = maxKeys;
  }

  /** Adds `value` under `key` at `timeMs`; returns the distinct values (oldest first) when they reach `maxValues`, then starts again. */
  add(key: string, value: string, timeMs: number, seq: number): { values: string[]; firstSeq: number } | undefined {
    let k = this.keys.get(key);
    if (!k) {
      if (this.keys.size >= this.maxKeys) this.keys.delete(this.keys.keys().next().value as string);
      k = { seen: new Map(), firstSeq: seq };
    } else this.keys.delete(key);
    this.keys.set(key, k);
    for (const [v, at] of k.seen) if (at <= timeMs - this.windowMs) k.seen.delete(v);
    if (k.seen.size === 0) k.firstSeq = seq;
    k.seen.delete(value);
    k.seen.set(value, timeMs);
    if (k.seen.size < this.maxValues) return undefined;
    const out = { values: [...k.seen.keys()], firstSeq: k.firstSeq };
    this.keys.delete(key);
    return out;
  }
}
