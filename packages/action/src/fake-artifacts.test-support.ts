/**
 * A fake of the Actions artifact service for @actions/artifact 6: the Twirp
 * CreateArtifact / FinalizeArtifact calls and the Azure block-blob upload they point to
 * (`PUT ?comp=block`, then `PUT ?comp=blocklist`), on 127.0.0.1. It never answers 5xx
 * (the client would retry with backoff). `runtimeToken()` is an unsigned JWT with the
 * only claim the client reads, `scp`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface UploadedArtifact {
  name: string;
  /** The zip as uploaded. */
  bytes: Buffer;
  sizeBytes: number;
  hash: string;
  isFinalized: boolean;
}

const TWIRP = "/twirp/github.actions.results.api.v1.ArtifactService/";

export class FakeArtifactService implements AsyncDisposable {
  readonly artifacts = new Map<string, UploadedArtifact>();
  readonly #blocks = new Map<string, Map<string, Buffer>>();
  #server: Server;
  url = "";

  private constructor() {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: "invalid_argument", msg: String(error) }));
      });
    });
  }

  static async start(): Promise<FakeArtifactService> {
    const fake = new FakeArtifactService();
    await new Promise<void>((resolve) => fake.#server.listen(0, "127.0.0.1", resolve));
    fake.url = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  /** ACTIONS_RUNTIME_TOKEN: `header.payload.` with `scp` naming the run and job backend ids. */
  static runtimeToken(): string {
    const part = (value: object): string =>
      Buffer.from(JSON.stringify(value)).toString("base64url");
    return `${part({ alg: "none", typ: "JWT" })}.${part({ scp: "Actions.GenericRead:1 Actions.Results:run-backend-1:job-backend-1" })}.`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const json = (status: number, data: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(data));
    };
    if (req.method === "POST" && url.pathname === `${TWIRP}CreateArtifact`) {
      const { name } = JSON.parse(body.toString("utf8")) as { name: string };
      if (this.artifacts.has(name)) {
        return json(409, {
          code: "already_exists",
          msg: `an artifact named ${name} already exists in this run`,
        });
      }
      this.artifacts.set(name, {
        name,
        bytes: Buffer.alloc(0),
        sizeBytes: 0,
        hash: "",
        isFinalized: false,
      });
      return json(200, {
        ok: true,
        signed_upload_url: `${this.url}/blob/account/container/${encodeURIComponent(name)}.zip?sig=fake`,
      });
    }
    if (req.method === "POST" && url.pathname === `${TWIRP}FinalizeArtifact`) {
      const { name, size, hash } = JSON.parse(body.toString("utf8")) as {
        name: string;
        size: string;
        hash?: { value?: string } | string;
      };
      const artifact = this.artifacts.get(name);
      if (!artifact) return json(404, { code: "not_found", msg: `no artifact ${name}` });
      artifact.isFinalized = true;
      artifact.sizeBytes = Number(size);
      artifact.hash = typeof hash === "string" ? hash : (hash?.value ?? "");
      return json(200, { ok: true, artifact_id: String(this.artifacts.size) });
    }
    const blob = /^\/blob\/account\/container\/(.+)\.zip$/.exec(url.pathname);
    if (req.method === "PUT" && blob) {
      const name = decodeURIComponent(blob[1]!);
      const artifact = this.artifacts.get(name);
      if (!artifact) return json(404, { code: "BlobNotFound" });
      const headers = {
        "x-ms-request-id": "fake",
        "x-ms-version": "2024-11-04",
        etag: '"0x1"',
        "last-modified": new Date().toUTCString(),
        "x-ms-request-server-encrypted": "true",
      };
      const comp = url.searchParams.get("comp");
      const blocks = this.#blocks.get(name) ?? new Map<string, Buffer>();
      this.#blocks.set(name, blocks);
      if (comp === "block") {
        blocks.set(url.searchParams.get("blockid") ?? "", body);
      } else if (comp === "blocklist") {
        const ids = [
          ...body.toString("utf8").matchAll(/<(?:Latest|Committed|Uncommitted)>([^<]*)<\//g),
        ].map((m) => m[1]!);
        artifact.bytes = Buffer.concat(ids.map((id) => blocks.get(id) ?? Buffer.alloc(0)));
      } else {
        artifact.bytes = body;
      }
      res.writeHead(201, headers);
      res.end();
      return;
    }
    json(404, { code: "not_found", msg: `${req.method} ${url.pathname}` });
  }
}
