import { createRequire } from 'node:module';

// src/cli and dist/cli are both two levels below package.json
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
