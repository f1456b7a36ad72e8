/** Keys of up to this many ASCII characters live in the typed arrays; longer ones in a Map. */
const PACKED_CHARS = 16;
const EMPTY = 0;

/**
 * Revoked token ids and when each stops mattering (epoch seconds), held in typed arrays: an
 * open-addressing hash table whose slots are four 32-bit words of the id (its ASCII characters,
 * packed, zero-padded) and the expiry. A million entries are two arrays of a few dozen megabytes
 * that the garbage collector never walks — the same ids in a `Map` are a million strings it marks
 * on every major collection, which slowed every verification around them by about a tenth. Lookups
 * compare the id exactly (no false positives). Ids longer than 16 characters, or not ASCII (not
 * Latchkey's own, which are 16), go to an ordinary `Map`.
 */
export class TokenTable {
  private words = new Uint32Array(4 * 1024);
  private expiries = new Uint32Array(1024);
  private used = 0;
  private readonly others = new Map<string, number>();
  private readonly key = new Uint32Array(4);

  get size(): number {
    return this.used + this.others.size;
  }

  /** Packs `id` into `this.key`; false when it does not fit (too long, or not ASCII). */
  private pack(id: string): boolean {
    const n = id.length;
    if (n === 0 || n > PACKED_CHARS) return false;
    let k0 = 0;
    let k1 = 0;
    let k2 = 0;
    let k3 = 0;
    for (let i = 0; i < n; i++) {
      const c = id.charCodeAt(i);
      if (c === 0 || c > 0x7f) return false;
      const v = c << ((i & 3) << 3);
      if (i < 4) k0 |= v;
      else if (i < 8) k1 |= v;
      else if (i < 12) k2 |= v;
      else k3 |= v;
    }
    const k = this.key;
    k[0] = k0;
    k[1] = k1;
    k[2] = k2;
    k[3] = k3;
    return true;
  }

  /** The slot holding the packed key, or the empty slot where it would go. */
  private slot(): number {
    const k = this.key;
    // Ids are random (the IdP makes them): one multiply per word and a final avalanche spread them.
    let h =
      Math.imul(k[0]!, 0x9e3779b1) ^
      Math.imul(k[1]!, 0x85ebca77) ^
      Math.imul(k[2]!, 0xc2b2ae3d) ^
      Math.imul(k[3]!, 0x27d4eb2f);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    const mask = this.expiries.length - 1;
    const words = this.words;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      if (this.expiries[s] === EMPTY) return s;
      const w = s << 2;
      if (words[w] === k[0] && words[w + 1] === k[1] && words[w + 2] === k[2] && words[w + 3] === k[3]) return s;
    }
  }

  /** Adds (or extends) an id until `expiresAt` (epoch seconds, after 1970 and before 2106). */
  set(id: string, expiresAt: number): void {
    const exp = Math.max(1, Math.min(0xffffffff, Math.floor(expiresAt)));
    if (!this.pack(id)) {
      this.others.set(id, Math.max(this.others.get(id) ?? 0, exp));
      return;
    }
    let s = this.slot();
    if (this.expiries[s] !== EMPTY) {
      this.expiries[s] = Math.max(this.expiries[s]!, exp);
      return;
    }
    // At most half full: probes stay short.
    if ((this.used + 1) * 2 > this.expiries.length) {
      this.rebuild(this.expiries.length * 2, 0);
      // The rebuild used the key buffer: pack this id again.
      this.pack(id);
      s = this.slot();
    }
    this.words.set(this.key, s * 4);
    this.expiries[s] = exp;
    this.used++;
  }

  has(id: string): boolean {
    // Nothing revoked (the usual state of a quiet service): no packing, no probe.
    if (this.used === 0 && this.others.size === 0) return false;
    if (!this.pack(id)) return this.others.has(id);
    return this.expiries[this.slot()] !== EMPTY;
  }

  /** Drops the ids that expired at or before `now` (epoch seconds); shrinks when mostly empty. */
  prune(now: number): void {
    for (const [k, exp] of this.others) if (exp <= now) this.others.delete(k);
    let live = 0;
    for (let s = 0; s < this.expiries.length; s++) if (this.expiries[s]! > now) live++;
    if (live === this.used) return;
    let size = 1024;
    while (live * 2 > size) size *= 2;
    // Open addressing cannot just clear a slot (a later probe chain would break): rebuild.
    this.rebuild(live * 4 > this.expiries.length ? this.expiries.length : size, now);
  }

  private rebuild(size: number, now: number): void {
    const oldWords = this.words;
    const oldExp = this.expiries;
    this.words = new Uint32Array(4 * size);
    this.expiries = new Uint32Array(size);
    this.used = 0;
    for (let s = 0; s < oldExp.length; s++) {
      const exp = oldExp[s]!;
      if (exp === EMPTY || exp <= now) continue;
      this.key.set(oldWords.subarray(s * 4, s * 4 + 4));
      const t = this.slot();
      this.words.set(this.key, t * 4);
      this.expiries[t] = exp;
      this.used++;
    }
  }
}
