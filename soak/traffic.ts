import { createVerifier, type Verifier, VerifyError } from '@latchkey/sdk/verify';
import { basicAuth } from '@latchkey/testkit';

/** A service of the soak's fleet: one client identity, several replicas each with its own verifier (and feed stream). */
export interface SoakService {
  index: number;
  clientId: string;
  secret: string;
  audience: string;
  /** Services it calls (indices). */
  targets: number[];
  verifiers: Verifier[];
  /** Per verifier: how many times each client revocation was applied (duplicates and losses show here). */
  clientRevocationsSeen: Map<string, number>[];
}

/** One revocation being watched until every subscriber it concerns enforces it. */
export interface WatchedRevocation {
  kind: 'token' | 'client';
  ref: string;
  /** When the IdP answered the revocation (ms since epoch). */
  answeredAt: number;
  /** Per subscriber, ms from the answer until it enforced the revocation (0 when already before the answer arrived). */
  latencies: number[];
  /** Subscribers that never enforced it within the watch limit. */
  unenforced: number;
}

export interface TrafficOptions {
  issuer: string;
  adminToken: string;
  services: number;
  replicasPerService: number;
  /** Tokens per second, overall. */
  issuanceRate: number;
  /** Milliseconds between random token revocations. */
  revocationEvery: number;
  /** Milliseconds between client revocations (a throwaway client, watched at every subscriber). */
  clientRevocationEvery: number;
  log: (line: string) => void;
}

interface PoolToken {
  token: string;
  jti: string;
  /** The service it was issued to, and the service it is for. */
  client: number;
  target: number;
  exp: number;
  revoking: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const claimsOf = (jwt: string): { jti: string; iat: number; exp: number } =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)]!;
const WATCH_LIMIT_MS = 30_000;
const POOL_SIZE = 2000;

/**
 * The fleet's traffic against the IdP behind the balancer: services issuing tokens for each
 * other and verifying them at their replicas (locally, through the SDK), random revocations of
 * those tokens and of whole clients, each watched at the subscribers it concerns. A request that
 * fails is retried as a client would (up to ~15 s); first-attempt failures are counted by cause.
 */
export class Traffic {
  readonly services: SoakService[] = [];
  readonly issuance = { attempts: 0, ok: 0, gaveUp: 0, firstAttemptFailures: {} as Record<string, number> };
  readonly verification = { checks: 0, failures: 0, samples: [] as string[] };
  readonly revocations: WatchedRevocation[] = [];
  /** Tokens whose issuance the IdP answered, and those whose revocation it answered (by jti). */
  readonly issued = new Set<string>();
  readonly revoked = new Set<string>();
  /** Client revocations answered (client ids). */
  readonly revokedClients: string[] = [];
  private readonly pool: PoolToken[] = [];
  private readonly watching = new Set<{ w: WatchedRevocation; pending: Map<number, () => Promise<boolean>> }>();
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly o: TrafficOptions;

  constructor(o: TrafficOptions) {
    this.o = o;
  }

  /** Registers the services and starts every replica's verifier. */
  async setUp(): Promise<void> {
    const n = this.o.services;
    for (let i = 0; i < n; i++) {
      const targets = [1, 2, 3].map((d) => (i + d) % n).filter((t) => t !== i);
      const reg = await this.register({
        client_name: `soak-svc-${i}`,
        audiences: targets.map((t) => `https://svc-${t}.soak`),
      });
      this.services.push({
        index: i,
        clientId: reg.client_id,
        secret: reg.client_secret,
        audience: `https://svc-${i}.soak`,
        targets,
        verifiers: [],
        clientRevocationsSeen: [],
      });
    }
    for (const s of this.services) {
      for (let r = 0; r < this.o.replicasPerService; r++) {
        const v = await createVerifier({
          issuer: this.o.issuer,
          audience: s.audience,
          credentials: { clientId: s.clientId, clientSecret: s.secret },
        });
        const seen = new Map<string, number>();
        v.onClientRevoked((id) => seen.set(id, (seen.get(id) ?? 0) + 1));
        s.verifiers.push(v);
        s.clientRevocationsSeen.push(seen);
      }
    }
  }

  get subscribers(): number {
    return this.services.reduce((n, s) => n + s.verifiers.length, 0);
  }

  start(): void {
    const workers = 8;
    const interval = (workers * 1000) / this.o.issuanceRate;
    for (let w = 0; w < workers; w++) this.loops.push(this.issueLoop(interval, w * (interval / workers)));
    this.loops.push(this.every(250, () => this.reverify()));
    this.loops.push(this.every(this.o.revocationEvery, () => this.revokeToken()));
    this.loops.push(this.every(this.o.clientRevocationEvery, () => this.revokeClient()));
    this.loops.push(this.every(5, () => this.watch()));
  }

  /** Stops the load, lets the watches settle, runs `settled` (the streams still open), and closes the verifiers. */
  async stop(settled: () => Promise<void> = async () => {}): Promise<void> {
    this.stopped = true;
    const deadline = Date.now() + WATCH_LIMIT_MS;
    while (this.watching.size > 0 && Date.now() < deadline) await this.watch();
    for (const { w, pending } of this.watching) w.unenforced += pending.size;
    this.watching.clear();
    await Promise.all(this.loops);
    await settled();
    for (const s of this.services) for (const v of s.verifiers) v.close();
  }

  private async every(ms: number, body: () => Promise<void>): Promise<void> {
    while (!this.stopped) {
      const t0 = Date.now();
      await body().catch((err: Error) => this.o.log(`soak: ${err.message}`));
      await sleep(Math.max(1, ms - (Date.now() - t0)));
    }
  }

  /** A request with a client's retries: network errors, 5xx and 429 are tried again for ~15 s. */
  private async call(what: string, request: () => Promise<Response>): Promise<Response | undefined> {
    for (let attempt = 0; attempt < 60; attempt++) {
      let failure: string;
      try {
        const res = await request();
        if (res.status < 500 && res.status !== 429) return res;
        failure = String(res.status);
        await res.arrayBuffer();
      } catch (err) {
        failure = ((err as Error).cause as { code?: string })?.code ?? (err as Error).name;
      }
      if (attempt === 0 && what === 'token') {
        const f = this.issuance.firstAttemptFailures;
        f[failure] = (f[failure] ?? 0) + 1;
      }
      await sleep(250);
    }
    return undefined;
  }

  private async register(metadata: Record<string, unknown>): Promise<{ client_id: string; client_secret: string }> {
    const res = await this.call('register', () =>
      fetch(`${this.o.issuer}/register`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.o.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(metadata),
      }),
    );
    if (res?.status !== 201) throw new Error(`registration failed: ${res?.status}`);
    return (await res.json()) as { client_id: string; client_secret: string };
  }

  private async token(clientId: string, secret: string, resource: string): Promise<string | undefined> {
    this.issuance.attempts++;
    const res = await this.call('token', () =>
      fetch(`${this.o.issuer}/token`, {
        method: 'POST',
        headers: { authorization: basicAuth(clientId, secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource }),
      }),
    );
    if (res?.status !== 200) {
      this.issuance.gaveUp++;
      if (res) this.o.log(`soak: token answered ${res.status}: ${await res.text()}`);
      return undefined;
    }
    const token = ((await res.json()) as { access_token: string }).access_token;
    this.issuance.ok++;
    this.issued.add(claimsOf(token).jti);
    return token;
  }

  private async issueLoop(interval: number, offset: number): Promise<void> {
    await sleep(offset);
    while (!this.stopped) {
      const t0 = Date.now();
      const s = pick(this.services);
      const target = pick(s.targets);
      const token = await this.token(s.clientId, s.secret, this.services[target]!.audience);
      if (token) {
        const c = claimsOf(token);
        await this.verifyValid(token, target);
        this.pool.push({ token, jti: c.jti, client: s.index, target, exp: c.exp, revoking: false });
        if (this.pool.length > POOL_SIZE) this.pool.splice(0, this.pool.length - POOL_SIZE);
      }
      await sleep(Math.max(0, interval - (Date.now() - t0)));
    }
  }

  /** A valid token must verify at any replica of its audience. */
  private async verifyValid(token: string, target: number): Promise<void> {
    this.verification.checks++;
    try {
      await pick(this.services[target]!.verifiers).verify(token);
    } catch (err) {
      this.verification.failures++;
      if (this.verification.samples.length < 20)
        this.verification.samples.push(`${(err as VerifyError).code ?? ''}: ${(err as Error).message}`);
    }
  }

  /** Tokens verified once already are verified again at other replicas, across key rotations. */
  private async reverify(): Promise<void> {
    const now = Date.now() / 1000;
    for (let i = 0; i < 10 && this.pool.length > 0; i++) {
      const t = pick(this.pool);
      if (!t.revoking && t.exp > now + 5) await this.verifyValid(t.token, t.target);
    }
  }

  private async revokeToken(): Promise<void> {
    const candidates = this.pool.filter((t) => !t.revoking && t.exp > Date.now() / 1000 + 30);
    if (candidates.length === 0) return;
    const t = pick(candidates);
    t.revoking = true;
    const issuer = this.services[t.client]!;
    const res = await this.call('revoke', () =>
      fetch(`${this.o.issuer}/revoke`, {
        method: 'POST',
        headers: {
          authorization: basicAuth(issuer.clientId, issuer.secret),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token: t.token, token_type_hint: 'access_token' }),
      }),
    );
    if (res?.status !== 200) throw new Error(`revocation answered ${res?.status}`);
    await res.arrayBuffer();
    const answeredAt = Date.now();
    this.revoked.add(t.jti);
    const pending = new Map<number, () => Promise<boolean>>();
    this.services[t.target]!.verifiers.forEach((v, i) =>
      pending.set(i, () =>
        v.verify(t.token).then(
          () => false,
          (err: unknown) => err instanceof VerifyError && err.code === 'token_revoked',
        ),
      ),
    );
    this.watchRevocation({ kind: 'token', ref: t.jti, answeredAt, latencies: [], unenforced: 0 }, pending);
  }

  /** A throwaway client gets a token, then is revoked: every subscriber must learn it. */
  private async revokeClient(): Promise<void> {
    const target = this.services[0]!;
    const reg = await this.register({ client_name: 'soak-canary', audiences: [target.audience] });
    const token = await this.token(reg.client_id, reg.client_secret, target.audience);
    if (!token) return;
    const iat = claimsOf(token).iat;
    const res = await this.call('client_revoke', () =>
      fetch(`${this.o.issuer}/admin/clients/${reg.client_id}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.o.adminToken}`, 'content-type': 'application/json' },
        body: '{}',
      }),
    );
    if (res?.status !== 200) throw new Error(`client revocation answered ${res?.status}`);
    await res.arrayBuffer();
    const answeredAt = Date.now();
    this.revokedClients.push(reg.client_id);
    const pending = new Map<number, () => Promise<boolean>>();
    let i = 0;
    for (const s of this.services)
      for (const v of s.verifiers) {
        const check =
          s === target
            ? () =>
                v.verify(token).then(
                  () => false,
                  (err: unknown) => err instanceof VerifyError && err.code === 'token_revoked',
                )
            : async () => v.clientRevoked(reg.client_id, iat);
        pending.set(i++, check);
      }
    this.watchRevocation({ kind: 'client', ref: reg.client_id, answeredAt, latencies: [], unenforced: 0 }, pending);
  }

  private watchRevocation(w: WatchedRevocation, pending: Map<number, () => Promise<boolean>>): void {
    this.revocations.push(w);
    this.watching.add({ w, pending });
  }

  /** Checks every pending subscriber of every watched revocation. */
  private async watch(): Promise<void> {
    const now = Date.now();
    for (const entry of this.watching) {
      for (const [i, enforced] of entry.pending)
        if (await enforced()) {
          entry.w.latencies.push(Math.max(0, Date.now() - entry.w.answeredAt));
          entry.pending.delete(i);
        }
      if (entry.pending.size === 0) this.watching.delete(entry);
      else if (now - entry.w.answeredAt > WATCH_LIMIT_MS) {
        entry.w.unenforced += entry.pending.size;
        this.watching.delete(entry);
      }
    }
  }

  /** Client revocations applied more than once, or never, per subscriber. */
  feedAccounting(): { expected: number; duplicates: number; missing: number } {
    let duplicates = 0;
    let missing = 0;
    let expected = 0;
    for (const s of this.services)
      for (const seen of s.clientRevocationsSeen)
        for (const id of this.revokedClients) {
          expected++;
          const n = seen.get(id) ?? 0;
          if (n === 0) missing++;
          if (n > 1) duplicates += n - 1;
        }
    return { expected, duplicates, missing };
  }
}
