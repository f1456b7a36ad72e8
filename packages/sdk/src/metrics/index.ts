export { registerLatchkeyMetrics, type LatchkeyMetricsSources } from './sdk_metrics.ts';
