export { startSidecar, type RunningSidecar, type SidecarOptions } from './sidecar.ts';
export { runSidecar } from './run.ts';
export { loadSidecarConfig, SIDECAR_ENV } from './config/load_sidecar_config.ts';
export { SidecarConfigSchema, type SidecarConfig, type RouteSpec } from './config/sidecar_config_schema.ts';
export { SidecarError, SIDECAR_ERROR_CODES, type SidecarErrorCode } from './errors.ts';
export { cedarAction } from './modes/authzen.ts';
