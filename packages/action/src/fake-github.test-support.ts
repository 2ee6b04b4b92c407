/**
 * A fake GitHub REST API on 127.0.0.1 for the action's tests: the endpoints the action
 * calls, with the status codes GitHub answers (404 for a non-collaborator, 422 for a
 * comment body over 65,536 characters), paginated comment lists with Link headers, and
 * a log of every request so tests can check what was (and was not) asked.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakePull {
  headSha: string;
  headRepo: string | null;
  baseRepo?: string;
}

export interface FakeComment {
  id: number;
  issue: number;
  body: string;
  user: { login: string; type: "User" | "Bot" };
  /** Every body the comment had, oldest first. */
  history: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export interface FakeGitHubOptions {
  owner?: string;
  repo?: string;
  pulls?: Record<number, FakePull>;
  /** login → { permission, role_name }; a login not here gets 404 (not a collaborator). */
  permissions?: Record<string, { permission: string; role_name: string }>;
}

const MAX_BODY = 65_536;

export class FakeGitHub implements AsyncDisposable {
  readonly owner: string;
  readonly repo: string;
  readonly pulls: Record<number, FakePull>;
  readonly permissions: Record<string, { permission: string; role_name: string }>;
  readonly requests: RecordedRequest[] = [];
  readonly comments = new Map<number, FakeComment>();
  readonly reactions: { commentId: number; content: string }[] = [];
  readonly statuses: {
    sha: string;
    state: string;
    context: string;
    description: string;
    target_url?: string;
  }[] = [];
  /** Requests no route answered. */
  readonly unexpected: string[] = [];
  #nextId = 1000;
  #server: Server;
  url = "";

  private constructor(options: FakeGitHubOptions) {
    this.owner = options.owner ?? "octo";
    this.repo = options.repo ?? "sweeps";
    this.pulls = options.pulls ?? {};
    this.permissions = options.permissions ?? {};
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: String(error) }));
      });
    });
  }

  static async start(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
    const fake = new FakeGitHub(options);
    await new Promise<void>((resolve) => fake.#server.listen(0, "127.0.0.1", resolve));
    fake.url = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  /** Adds a comment as if someone had written it earlier. */
  seedComment(
    issue: number,
    body: string,
    user: FakeComment["user"] = { login: "someone", type: "User" },
  ): FakeComment {
    const comment = { id: this.#nextId++, issue, body, user, history: [body] };
    this.comments.set(comment.id, comment);
    return comment;
  }

  commentsOn(issue: number): FakeComment[] {
    return [...this.comments.values()].filter((c) => c.issue === issue);
  }

  /** Requests other than reads, as `METHOD path`. */
  writes(): string[] {
    return this.requests.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #htmlUrl(comment: FakeComment): string {
    return `https://github.com/${this.owner}/${this.repo}/pull/${comment.issue}#issuecomment-${comment.id}`;
  }

  #commentJson(comment: FakeComment): Record<string, unknown> {
    return {
      id: comment.id,
      body: comment.body,
      user: comment.user,
      html_url: this.#htmlUrl(comment),
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const body: unknown = text ? JSON.parse(text) : undefined;
    const method = req.method ?? "GET";
    this.requests.push({ method, path: url.pathname, query: url.searchParams, body });
    const send = (status: number, data: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(data));
    };
    const prefix = `/repos/${this.owner}/${this.repo}`;
    if (!url.pathname.startsWith(`${prefix}/`)) {
      this.unexpected.push(`${method} ${url.pathname}`);
      send(404, { message: "Not Found" });
      return;
    }
    const route = `${method} ${url.pathname.slice(prefix.length)}`;
    let match: RegExpExecArray | null;

    if ((match = /^GET \/pulls\/(\d+)$/.exec(route))) {
      const pull = this.pulls[Number(match[1])];
      if (!pull) return send(404, { message: "Not Found" });
      const base = pull.baseRepo ?? `${this.owner}/${this.repo}`;
      return send(200, {
        number: Number(match[1]),
        state: "open",
        head: {
          sha: pull.headSha,
          repo: pull.headRepo === null ? null : { full_name: pull.headRepo },
        },
        base: { repo: { full_name: base } },
      });
    }
    if ((match = /^GET \/collaborators\/([^/]+)\/permission$/.exec(route))) {
      const access = this.permissions[decodeURIComponent(match[1]!)];
      if (!access) return send(404, { message: "Not Found" });
      return send(200, { ...access, user: { login: match[1] } });
    }
    if ((match = /^POST \/issues\/comments\/(\d+)\/reactions$/.exec(route))) {
      const content = (body as { content: string }).content;
      this.reactions.push({ commentId: Number(match[1]), content });
      return send(201, { id: this.reactions.length, content });
    }
    if ((match = /^GET \/issues\/(\d+)\/comments$/.exec(route))) {
      const issue = Number(match[1]);
      const perPage = Number(url.searchParams.get("per_page") ?? "30");
      const page = Number(url.searchParams.get("page") ?? "1");
      const all = this.commentsOn(issue);
      const last = Math.max(1, Math.ceil(all.length / perPage));
      const slice = all.slice((page - 1) * perPage, page * perPage);
      const link = (p: number): string => {
        const next = new URL(url);
        next.searchParams.set("page", String(p));
        next.searchParams.set("per_page", String(perPage));
        return next.toString();
      };
      const headers: Record<string, string> =
        page < last ? { link: `<${link(page + 1)}>; rel="next", <${link(last)}>; rel="last"` } : {};
      return send(
        200,
        slice.map((c) => this.#commentJson(c)),
        headers,
      );
    }
    if ((match = /^POST \/issues\/(\d+)\/comments$/.exec(route))) {
      const text = (body as { body: string }).body;
      if (text.length > MAX_BODY)
        return send(422, {
          message: "Validation Failed",
          errors: [{ message: "Body is too long" }],
        });
      const comment = this.seedComment(Number(match[1]), text, {
        login: "github-actions[bot]",
        type: "Bot",
      });
      return send(201, this.#commentJson(comment));
    }
    if ((match = /^(GET|PATCH) \/issues\/comments\/(\d+)$/.exec(route))) {
      const comment = this.comments.get(Number(match[2]));
      if (!comment) return send(404, { message: "Not Found" });
      if (match[1] === "PATCH") {
        const text = (body as { body: string }).body;
        if (text.length > MAX_BODY)
          return send(422, {
            message: "Validation Failed",
            errors: [{ message: "Body is too long" }],
          });
        comment.body = text;
        comment.history.push(text);
      }
      return send(200, this.#commentJson(comment));
    }
    if ((match = /^POST \/statuses\/([0-9a-f]{40})$/.exec(route))) {
      const status = body as {
        state: string;
        context: string;
        description: string;
        target_url?: string;
      };
      this.statuses.push({ sha: match[1]!, ...status });
      return send(201, { id: this.statuses.length, ...status });
    }
    this.unexpected.push(route);
    send(404, { message: "Not Found" });
  }
}
