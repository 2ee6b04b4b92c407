/**
 * The REST calls the action makes, on @actions/github's Octokit (GITHUB_API_URL is read
 * from the environment, so GHES and test fakes work unchanged).
 */
import { getOctokit } from "@actions/github";

export type Reaction = "eyes" | "rocket" | "confused" | "-1" | "+1";
export type CommitState = "pending" | "success" | "failure" | "error";

/** The parts of a pull request the action reads. */
export interface PullRequestInfo {
  number: number;
  headSha: string;
  headRepo: string | null;
  baseRepo: string;
  state: string;
}

export interface CommentRef {
  id: number;
  htmlUrl: string;
}

/** A collaborator's access: the exact role and the folded base permission. */
export interface Permission {
  roleName: string;
  permission: string;
}

function status(error: unknown): number | undefined {
  const value = (error as { status?: unknown }).status;
  return typeof value === "number" ? value : undefined;
}

/** Repository-scoped GitHub calls. */
export class GitHubApi {
  readonly owner: string;
  readonly repo: string;
  readonly #octokit: ReturnType<typeof getOctokit>;

  /** `baseUrl` defaults to GITHUB_API_URL (read by @actions/github when it is imported). */
  constructor(token: string, owner: string, repo: string, baseUrl?: string) {
    this.#octokit = getOctokit(token, baseUrl ? { baseUrl } : {});
    this.owner = owner;
    this.repo = repo;
  }

  get #where(): { owner: string; repo: string } {
    return { owner: this.owner, repo: this.repo };
  }

  /** The user's access to the repository; null when they are not a collaborator (404). */
  async permission(username: string): Promise<Permission | null> {
    try {
      const { data } = await this.#octokit.rest.repos.getCollaboratorPermissionLevel({
        ...this.#where,
        username,
      });
      const roleName = (data as { role_name?: unknown }).role_name;
      return {
        permission: data.permission,
        roleName: typeof roleName === "string" ? roleName : data.permission,
      };
    } catch (error) {
      if (status(error) === 404) return null;
      throw error;
    }
  }

  async pullRequest(pullNumber: number): Promise<PullRequestInfo> {
    const { data } = await this.#octokit.rest.pulls.get({
      ...this.#where,
      pull_number: pullNumber,
    });
    return {
      number: data.number,
      headSha: data.head.sha,
      headRepo: data.head.repo?.full_name ?? null,
      baseRepo: data.base.repo.full_name,
      state: data.state,
    };
  }

  async react(commentId: number, content: Reaction): Promise<void> {
    await this.#octokit.rest.reactions.createForIssueComment({
      ...this.#where,
      comment_id: commentId,
      content,
    });
  }

  async createComment(issueNumber: number, body: string): Promise<CommentRef> {
    const { data } = await this.#octokit.rest.issues.createComment({
      ...this.#where,
      issue_number: issueNumber,
      body,
    });
    return { id: data.id, htmlUrl: data.html_url };
  }

  async updateComment(commentId: number, body: string): Promise<CommentRef> {
    const { data } = await this.#octokit.rest.issues.updateComment({
      ...this.#where,
      comment_id: commentId,
      body,
    });
    return { id: data.id, htmlUrl: data.html_url };
  }

  async getCommentBody(commentId: number): Promise<string | null> {
    try {
      const { data } = await this.#octokit.rest.issues.getComment({
        ...this.#where,
        comment_id: commentId,
      });
      return data.body ?? "";
    } catch (error) {
      if (status(error) === 404) return null;
      throw error;
    }
  }

  /**
   * The newest comment on the issue whose body starts with `markerLine`, reading every
   * page; comments written by bots are preferred, so a user who pastes the marker does
   * not take the sticky comment over.
   */
  async findComment(issueNumber: number, markerLine: string): Promise<CommentRef | null> {
    let byBot: CommentRef | null = null;
    let byUser: CommentRef | null = null;
    const pages = this.#octokit.paginate.iterator(this.#octokit.rest.issues.listComments, {
      ...this.#where,
      issue_number: issueNumber,
      per_page: 100,
    });
    for await (const page of pages) {
      for (const comment of page.data) {
        if (!comment.body?.startsWith(markerLine)) continue;
        const ref = { id: comment.id, htmlUrl: comment.html_url };
        if (comment.user?.type === "Bot") byBot = ref;
        else byUser = ref;
      }
    }
    return byBot ?? byUser;
  }

  async createStatus(
    sha: string,
    state: CommitState,
    context: string,
    description: string,
    targetUrl?: string,
  ): Promise<void> {
    await this.#octokit.rest.repos.createCommitStatus({
      ...this.#where,
      sha,
      state,
      context,
      description: description.length > 140 ? `${description.slice(0, 139)}…` : description,
      ...(targetUrl ? { target_url: targetUrl } : {}),
    });
  }
}

/** The HTTP status of an Octokit error, if it has one. */
export function httpStatus(error: unknown): number | undefined {
  return status(error);
}
