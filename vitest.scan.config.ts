import { defineConfig } from 'vitest/config';

// The secret scan runs on its own, after the app suites have written their captured logs.
export default defineConfig({ test: { name: 'scan', include: ['test/scan/**/*.test.ts'] } });
