import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { LocalStorage } from "@tmgg/core";
import { storageContract } from "./storage-contract.ts";

storageContract("LocalStorage", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "tmgg-local-contract-"));
  return {
    storage: new LocalStorage(path.join(dir, "root")),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
