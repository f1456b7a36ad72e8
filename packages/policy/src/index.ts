export { CompiledBundle, type Decision, type DecisionRequest } from './compiled_bundle.ts';
export { isAuthorized } from './is_authorized.ts';
export { CedarTrap, withCedar, cedarGeneration, cedarEngineHealth, type Cedar } from './cedar_engine.ts';
export {
  schemaFacts,
  conforms,
  entityConforms,
  requestConforms,
  isActionType,
  type SchemaFacts,
  type SchemaType,
} from './cedar_schema.ts';
export {
  POLICY_LIMITS,
  policyTextProblems,
  schemaTextProblems,
  scanCedarText,
  jsonDepth,
  hierarchyDepth,
  type LimitProblem,
} from './policy_limits.ts';
export {
  EntityStore,
  EntityVal,
  EvalError,
  Unsupported,
  evalRequest,
  decide,
  satisfied,
  compile,
  fromJson,
  type EvalRequest,
  type PolicyJson,
} from './cedar_eval.ts';
export { splitPolicyFile, cedarProblem, type PolicyProblem } from './policy_file.ts';
