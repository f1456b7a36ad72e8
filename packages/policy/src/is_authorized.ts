import type { PolicyEntity } from '@latchkey/protocol';
import { CompiledBundle, type Decision } from './compiled_bundle.ts';

/**
 * Cedar's question, in Cedar's shape: may `principal` do `action` on `resource` in `context`,
 * under `policies` (a bundle prepared once with {@link CompiledBundle.compile}, or the bundle's
 * parts — compiled on every call, for one-off questions). The TypeScript evaluator decides what it
 * can; cedar-wasm, given the schema, decides the rest; an engine failure denies.
 *
 * @example
 * ```ts
 * import { CompiledBundle, isAuthorized } from '@latchkey/policy';
 * const bundle = CompiledBundle.compile({ schema, policies, entities });
 * const { decision, reasons } = isAuthorized(
 *   { principal: { uid: { type: 'User', id: 'alice' }, attrs: {}, parents: [] }, action: { type: 'Action', id: 'read' },
 *     resource: { uid: { type: 'Doc', id: '42' }, attrs: {}, parents: [] }, context: {} },
 *   bundle,
 * );
 * ```
 */
export function isAuthorized(
  request: {
    principal: PolicyEntity;
    action: { type: string; id: string };
    resource: PolicyEntity;
    context?: Record<string, unknown>;
  },
  policies:
    | CompiledBundle
    | { schema: Record<string, string>; policies: Record<string, string>; entities: readonly PolicyEntity[] },
): Decision {
  const bundle = policies instanceof CompiledBundle ? policies : CompiledBundle.compile(policies);
  return bundle.isAuthorized({
    principal: request.principal,
    action: request.action,
    resource: request.resource,
    context: request.context ?? {},
  });
}
