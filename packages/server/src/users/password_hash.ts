import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * scrypt parameters. OWASP's Password Storage Cheat Sheet: N = 2^17, r = 8, p = 1 (128 MiB and
 * about a fifth of a second of one core per hash). `ln` is log2(N).
 */
export interface ScryptCost {
  ln: number;
  r: number;
  p: number;
}

export const OWASP_SCRYPT: ScryptCost = { ln: 17, r: 8, p: 1 };

const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** What a stored hash may ask for: beyond it the string is not ours (or was tampered with). */
const LIMITS = { ln: [10, 20], r: [1, 16], p: [1, 4] } as const;
const MAX_MEMORY = 512 * 1024 * 1024;
/** PHC string format: $scrypt$ln=17,r=8,p=1$<salt>$<hash> (base64 without padding). */
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,64})\$([A-Za-z0-9+/]{32,128})$/;

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
const memoryOf = (c: ScryptCost) => 128 * c.r * 2 ** c.ln + 128 * c.r * c.p + 1024 * 1024;

function derive(password: string, salt: Buffer, cost: ScryptCost, length: number): Promise<Buffer> {
  const options: ScryptOptions = { N: 2 ** cost.ln, r: cost.r, p: cost.p, maxmem: memoryOf(cost) };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/**
 * Hashes and checks user passwords with scrypt (memory-hard; node:crypto, run on libuv's thread
 * pool, never on the event loop), stored as PHC strings so the cost can rise later: a hash made
 * at a lower cost verifies and reports `needsRehash`. At most `concurrency` hashes run at once,
 * so a burst of logins queues instead of taking N × 128 MiB.
 */
export class PasswordHasher {
  readonly cost: ScryptCost;
  private readonly concurrency: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** A hash of nothing anyone knows, checked for unknown users so timing does not tell who exists. */
  private decoy: Promise<string> | undefined;

  constructor(cost: ScryptCost = OWASP_SCRYPT, concurrency = 4) {
    this.cost = cost;
    this.concurrency = concurrency;
  }

  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  /** A PHC string of a fresh salt and the password's scrypt hash at this hasher's cost. */
  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    const key = await this.slot(() => derive(password, salt, this.cost, KEY_BYTES));
    const { ln, r, p } = this.cost;
    return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`;
  }

  /**
   * Whether `password` matches `stored` (constant-time comparison). An unknown user (`stored`
   * null) or a string that is not a PHC scrypt hash within the limits costs the same work and is false.
   */
  async verify(password: string, stored: string | null): Promise<boolean> {
    const parsed = stored ? parse(stored) : undefined;
    if (!parsed) {
      this.decoy ??= this.hash(randomBytes(16).toString('hex'));
      const decoy = parse(await this.decoy) as NonNullable<ReturnType<typeof parse>>;
      await this.slot(() => derive(password, decoy.salt, decoy.cost, decoy.key.length));
      return false;
    }
    const key = await this.slot(() => derive(password, parsed.salt, parsed.cost, parsed.key.length));
    return timingSafeEqual(key, parsed.key);
  }

  /** True when `stored` was made at another cost than this hasher's (rehash after the next good login). */
  needsRehash(stored: string): boolean {
    const parsed = parse(stored);
    return !parsed || parsed.cost.ln !== this.cost.ln || parsed.cost.r !== this.cost.r || parsed.cost.p !== this.cost.p;
  }
}

function parse(stored: string): { cost: ScryptCost; salt: Buffer; key: Buffer } | undefined {
  const m = PHC.exec(stored);
  if (!m) return undefined;
  const cost = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  for (const k of ['ln', 'r', 'p'] as const) if (cost[k] < LIMITS[k][0] || cost[k] > LIMITS[k][1]) return undefined;
  if (memoryOf(cost) > MAX_MEMORY) return undefined;
  return { cost, salt: Buffer.from(m[4] as string, 'base64'), key: Buffer.from(m[5] as string, 'base64') };
}
