import { createRequire } from 'node:module';
import type * as CedarWasm from '@cedar-policy/cedar-wasm/nodejs';

export type Cedar = typeof CedarWasm;

const require = createRequire(import.meta.url);
const CEDAR_PATH = require.resolve('@cedar-policy/cedar-wasm/nodejs');

/** A fresh cedar-wasm instance: the module is loaded again, so it gets new linear memory. */
function load(): Cedar {
  delete require.cache[CEDAR_PATH];
  return require(CEDAR_PATH) as Cedar;
}

let instance: Cedar | undefined;
let generation = 0;
let traps = 0;
let lastTrap: { at: string; message: string } | null = null;

/**
 * Thrown when cedar-wasm trapped (a stack overflow inside wasm surfaces as "memory access out of
 * bounds" or "unreachable"). The instance that trapped has been discarded: the next call gets a
 * fresh one, so a trap cannot outlive the call that caused it. Callers fail closed.
 */
export class CedarTrap extends Error {
  readonly code = 'policy_engine_trapped';
  constructor(message: string) {
    super(`the policy engine failed on this input and was restarted: ${message}`);
    this.name = 'CedarTrap';
  }
}

/**
 * Runs `fn` against the current cedar-wasm instance. cedar-wasm answers failures as values; an
 * exception out of it means the wasm instance trapped, and a trapped instance answers every later
 * call with the same error — so the instance is replaced before the trap is reported. Anything
 * prepared inside the old instance (preparsed policy sets, schemas) is gone: compare
 * {@link cedarGeneration} before using it.
 *
 * @example
 * ```ts
 * const parsed = withCedar((cedar) => cedar.checkParsePolicySet({ staticPolicies: text }));
 * ```
 */
export function withCedar<T>(fn: (cedar: Cedar) => T): T {
  instance ??= load();
  try {
    return fn(instance);
  } catch (err) {
    traps++;
    const message = err instanceof Error ? err.message : String(err);
    lastTrap = { at: new Date().toISOString(), message };
    instance = load();
    generation++;
    throw new CedarTrap(message);
  }
}

/** Increases each time the instance is replaced; state prepared in an older generation is gone. */
export const cedarGeneration = (): number => generation;

/** How often cedar-wasm trapped in this process, and the last time. */
export const cedarEngineHealth = (): { traps: number; lastTrap: { at: string; message: string } | null } => ({
  traps,
  lastTrap,
});
