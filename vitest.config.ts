import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/compile-cache.ts', 'test/setup/cli-bin.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // 2-core machines: ORT sessions already use the cores; run files one after another
    fileParallelism: false,
  },
});
