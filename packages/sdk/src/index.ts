export * from './verify/index.ts';
