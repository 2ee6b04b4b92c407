import { storageContract } from "@tmgg/test-utils";
import { describe } from "vitest";
import { emptyAndClose, freshStorage, server, skipReason } from "./test-server.ts";

describe.skipIf(server === null)(
  server ? `on ${server.endpoint}` : `SKIPPED: ${skipReason}`,
  () => {
    storageContract("S3Storage", () => {
      const storage = freshStorage(server!);
      return Promise.resolve({ storage, cleanup: () => emptyAndClose(storage) });
    });
  },
);
