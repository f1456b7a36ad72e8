import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { AdminErrorBody, PolicyBundleContent, PolicyEntity } from '@latchkey/protocol';
import { AdminError, conflict, notFound } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import type { FeedStore, PolicyStore, PolicyVersionRecord } from '../storage/ports.ts';
import { bundleDigest } from './policy_digest.ts';
import { diffBundles } from './policy_diff.ts';
import type { PolicyProblem, ValidationReport } from './policy_validator.ts';
import type { BundleValidator } from './bundle_validator.ts';
import { RESERVED, withReservedSchema } from './token_policy.ts';

/** A bundle Cedar refused: 400 `validation_failed` with every problem, located. Nothing was changed. */
export class PolicyValidationError extends AdminError {
  readonly report: ValidationReport;

  constructor(report: ValidationReport) {
    const first = report.errors[0];
    super(
      'validation_failed',
      `the policy bundle is not valid: ${first ? `${first.source}${first.line ? `:${first.line}:${first.column}` : ''}: ${first.message}` : 'unknown problem'}`,
    );
    this.report = report;
  }

  override toJSON(): AdminErrorBody {
    return {
      error: 'validation_failed',
      error_description: this.message,
      errors: this.report.errors,
      warnings: this.report.warnings,
    };
  }
}

const EMPTY: PolicyBundleContent = { schema: {}, policies: {}, entities: [] };

export interface PolicyPublisherDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  store: PolicyStore & Pick<FeedStore, 'appendFeedEvent'>;
  events: ServerEvents;
  issuer: string;
  /** How long a `policy.published` feed entry lives (consumers that miss it refetch the bundle anyway). */
  feedTtl: number;
  /** Cedar validation with limits, off the event loop. */
  validator: Pick<BundleValidator, 'validate'>;
}

/**
 * Publishes policy bundles: every change — a push, an entity or role change, a rollback — is
 * validated by Cedar against the schema and becomes a new version atomically (with its audit
 * event), or is refused with nothing changed. The newest version is the active one; a rollback
 * publishes an old version's content again, so history only grows.
 */
export class PolicyPublisher {
  private readonly deps: PolicyPublisherDeps;

  constructor(deps: PolicyPublisherDeps) {
    this.deps = deps;
  }

  async active(): Promise<PolicyVersionRecord | undefined> {
    return this.deps.store.getPolicyVersion();
  }

  /**
   * Validates and publishes `content` as the next version. `expectedVersion` (the version the
   * caller edited) turns a concurrent publish into 409 instead of a silent overwrite.
   */
  async publish(
    pushed: PolicyBundleContent,
    options: { actor: string; note?: string | null; expectedVersion?: number; reason?: string },
  ): Promise<{ record: PolicyVersionRecord; warnings: PolicyProblem[]; unchanged: boolean }> {
    const content = withReservedSchema(pushed);
    const report = await this.deps.validator.validate(content, { reserved: RESERVED });
    if (!report.ok) throw new PolicyValidationError(report);
    const head = await this.deps.store.getPolicyVersion();
    const headVersion = head?.version ?? 0;
    if (options.expectedVersion !== undefined && options.expectedVersion !== headVersion) {
      throw conflict(
        `the active policy version is ${headVersion}, not ${options.expectedVersion}: fetch it and apply the change again`,
      );
    }
    const digest = bundleDigest(content);
    if (head && head.digest === digest) return { record: head, warnings: report.warnings, unchanged: true };
    const record: PolicyVersionRecord = {
      version: headVersion + 1,
      digest,
      publishedAt: new Date(this.deps.clock.now()).toISOString(),
      actor: options.actor,
      note: options.note ?? null,
      schema: content.schema,
      policies: content.policies,
      entities: content.entities,
    };
    const diff = diffBundles(head ?? EMPTY, content);
    const event = this.deps.events.stage('policy.published', {
      actor: options.actor,
      subject: `policy:${record.version}`,
      outcome: 'success',
      ...(options.reason ? { reason: options.reason } : {}),
      detail: {
        version: record.version,
        previous: head?.version ?? null,
        digest,
        policies: diff.policies,
        schema: diff.schema,
        entities: {
          added: diff.entities.added.length,
          removed: diff.entities.removed.length,
          changed: diff.entities.changed.length,
        },
      },
    });
    if (!(await this.deps.store.insertPolicyVersion(record, [event]))) {
      throw conflict('another policy version was published at the same time; try again');
    }
    this.deps.events.committed(event);
    const now = epochSeconds(this.deps.clock);
    // Services learn of it at once on the feed stream (and by ETag polling if they miss it).
    await this.deps.store.appendFeedEvent({
      stream: 'policy',
      kind: 'policy.published',
      iss: this.deps.issuer,
      ref: String(record.version),
      notBefore: null,
      expiresAt: now + this.deps.feedTtl,
      createdAt: now,
      data: { digest },
    });
    return { record, warnings: report.warnings, unchanged: false };
  }

  /** Applies `change` to the active entities and publishes the result (validated like any push). */
  async changeEntities(
    change: (entities: PolicyEntity[]) => PolicyEntity[],
    options: { actor: string; note: string },
  ): Promise<{ record: PolicyVersionRecord; warnings: PolicyProblem[]; unchanged: boolean }> {
    const head = (await this.deps.store.getPolicyVersion()) ?? { ...EMPTY, version: 0 };
    return this.publish(
      { schema: head.schema, policies: head.policies, entities: change(structuredClone(head.entities)) },
      { ...options, expectedVersion: head.version },
    );
  }

  /** Publishes an earlier version's content again as the newest version. */
  async rollback(
    version: number,
    actor: string,
  ): Promise<{ record: PolicyVersionRecord; warnings: PolicyProblem[]; unchanged: boolean }> {
    const old = await this.deps.store.getPolicyVersion(version);
    if (!old) throw notFound(`there is no policy version ${version}`);
    return this.publish(
      { schema: old.schema, policies: old.policies, entities: old.entities },
      { actor, note: `rollback to version ${version}`, reason: 'rollback' },
    );
  }
}
