import { defineConfig } from "vitest/config";

// The tests run the bundled action as child processes: give each one room on a 2-core machine.
export default defineConfig({ test: { testTimeout: 30_000, hookTimeout: 30_000 } });
