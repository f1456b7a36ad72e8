import { createRequire } from 'node:module';

/** This package's version (package.json), the same from src and from dist. */
export const SERVER_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string })
  .version;
