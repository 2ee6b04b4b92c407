import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // An S3 server for the tests: S3_ENDPOINT, or Ceph radosgw started on 127.0.0.1.
    globalSetup: ["./src/test-server.setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
