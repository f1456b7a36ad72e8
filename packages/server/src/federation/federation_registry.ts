import type { FederationIssuerRecord, FederationRuleRecord, FederationStore } from '../storage/ports.ts';

/**
 * The trusted issuers and their rules, held in memory (the token path decides on them without a
 * query): reloaded after each change made here, and every few seconds for changes made on other
 * replicas.
 */
export class FederationRegistry {
  private issuers: FederationIssuerRecord[] = [];
  private rules: FederationRuleRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly store: Pick<FederationStore, 'listFederationIssuers' | 'listFederationRules'>;

  constructor(store: Pick<FederationStore, 'listFederationIssuers' | 'listFederationRules'>) {
    this.store = store;
  }

  async reload(): Promise<void> {
    const [issuers, rules] = await Promise.all([this.store.listFederationIssuers(), this.store.listFederationRules()]);
    this.issuers = issuers;
    this.rules = rules;
  }

  start(everySeconds: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => void this.reload().catch(onError), everySeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** An OpenID Connect / JWT issuer by its `iss`. */
  byIss(iss: string): FederationIssuerRecord | undefined {
    return this.issuers.find((i) => i.kind === 'oidc' && i.issuer === iss);
  }

  /** Whether any OpenID Connect / JWT issuer is trusted (else no client assertion needs decoding to tell). */
  get hasOidcIssuers(): boolean {
    return this.issuers.some((i) => i.kind === 'oidc');
  }

  /** A SPIFFE trust domain by name. */
  byTrustDomain(td: string): FederationIssuerRecord | undefined {
    return this.issuers.find((i) => i.kind === 'spiffe' && i.issuer === td);
  }

  rulesOf(issuerName: string): FederationRuleRecord[] {
    return this.rules.filter((r) => r.issuer === issuerName);
  }

  get all(): { issuers: FederationIssuerRecord[]; rules: FederationRuleRecord[] } {
    return { issuers: this.issuers, rules: this.rules };
  }
}
