import { ModalClient, SandboxFilesystemPermissionError } from "modal";
import { ClientError, Status } from "nice-grpc";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startFakeModal, type FakeModal } from "./fake-modal.ts";

const ENV_KEYS = ["MODAL_SERVER_URL", "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"] as const;

describe("FakeModal", () => {
  let fake: FakeModal;
  let saved: Record<string, string | undefined>;

  beforeEach(async () => {
    fake = await startFakeModal();
    saved = Object.fromEntries(ENV_KEYS.map((key) => [key, process.env[key]]));
    Object.assign(process.env, fake.env());
  });

  afterEach(async () => {
    await fake.close();
    for (const key of ENV_KEYS) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  const client = (): ModalClient => new ModalClient({ logLevel: "error" });

  async function sandbox(modal: ModalClient, timeoutMs = 60_000) {
    const app = await modal.apps.fromName("fake-test", { createIfMissing: true });
    const image = modal.images.fromRegistry("python:3.12-slim");
    return modal.sandboxes.create(app, image, { gpu: "T4", timeoutMs, workdir: "/work" });
  }

  it("runs exec as a real process in the sandbox's folder, with the workdir's paths mapped onto it", async () => {
    const modal = client();
    const sb = await sandbox(modal);
    await sb.filesystem.writeText("hello", "/work/in/hello.txt");
    const command = await sb.exec(["sh", "-c", 'cat in/hello.txt; echo " $WHERE"'], {
      env: { WHERE: "/work/in" },
    });
    const [code, stdout] = await Promise.all([command.wait(), command.stdout.readText()]);
    expect(code).toBe(0);
    expect(stdout).toBe(`hello ${fake.sandbox(sb.sandboxId)!.dir}/in\n`);
    expect(await sb.filesystem.readText("/work/in/hello.txt")).toBe("hello");
    await sb.terminate();
    expect(fake.terminateCount(sb.sandboxId)).toBe(1);
    fake.assertAllTerminated();
  });

  it("refuses file operations outside the sandbox's mapped folders", async () => {
    const sb = await sandbox(client());
    await expect(sb.filesystem.readText("/etc/hostname")).rejects.toBeInstanceOf(
      SandboxFilesystemPermissionError,
    );
    await sb.terminate();
  });

  it("ends a sandbox at its own timeout, killing what runs in it", async () => {
    const sb = await sandbox(client(), 1000);
    const sleeper = await sb.exec(["sleep", "30"]);
    expect(await sleeper.wait()).toBe(137);
    expect(await sb.poll()).toBe(124);
    await sb.terminate();
  });

  it("answers UNIMPLEMENTED for the methods it does not implement", async () => {
    const error = await client()
      .queues.fromName("some-queue")
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe(Status.UNIMPLEMENTED);
    expect(fake.callsTo("QueueGetOrCreate")).toHaveLength(1);
  });

  it("refuses other credentials with UNAUTHENTICATED", async () => {
    const modal = new ModalClient({
      tokenId: "ak-wrong",
      tokenSecret: "as-wrong",
      logLevel: "error",
    });
    await expect(modal.apps.fromName("x", { createIfMissing: true })).rejects.toThrow(
      /UNAUTHENTICATED/,
    );
  });

  it("fails the next calls as told, records every call, and names injections never used", async () => {
    fake.failNext("AppGetOrCreate", { code: Status.PERMISSION_DENIED });
    fake.failNext("SandboxCreate", { times: 2 });
    await expect(client().apps.fromName("x", { createIfMissing: true })).rejects.toThrow(
      /PERMISSION_DENIED/,
    );
    expect(fake.callsTo("AppGetOrCreate")[0]!.injected).toBe("PERMISSION_DENIED");
    expect(fake.calls.map((call) => call.method)).toEqual(["AuthTokenGet", "AppGetOrCreate"]);
    expect(() => fake.assertExhausted()).toThrow(
      "[modal-fake] injected but never used: 2 × SandboxCreate RESOURCE_EXHAUSTED",
    );
  });

  it("names sandboxes that never received a SandboxTerminate", async () => {
    const sb = await sandbox(client());
    expect(() => fake.assertAllTerminated()).toThrow(
      `[modal-fake] sandboxes never terminated: ${sb.sandboxId}`,
    );
  });
});
