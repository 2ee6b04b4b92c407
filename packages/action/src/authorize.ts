/**
 * Who may start a sweep: the collaborator permission API, compared against a minimum
 * role. `author_association` is never used (it is not a permission: read-only
 * collaborators and private org members show up in ways that say nothing of access).
 */
import type { GitHubApi } from "./github-api.ts";

/** Repository roles, weakest first. */
export const ROLES = ["read", "triage", "write", "maintain", "admin"] as const;
export type Role = (typeof ROLES)[number];

function rank(name: string): number {
  return ROLES.indexOf(name.toLowerCase() as Role);
}

/** The user's effective role: the exact `role_name` when it is a known role, else the folded `permission` (custom roles fold to their base). */
export function effectiveRole(access: { roleName: string; permission: string }): Role | null {
  const best = Math.max(rank(access.roleName), rank(access.permission));
  return best < 0 ? null : ROLES[best]!;
}

export type Authorization =
  { isAllowed: true; role: Role } | { isAllowed: false; role: Role | null };

/** Asks GitHub for the user's access and compares it with `minimum`; a non-collaborator (404) has none. */
export async function authorize(
  api: GitHubApi,
  username: string,
  minimum: Role,
): Promise<Authorization> {
  const access = await api.permission(username);
  const role = access ? effectiveRole(access) : null;
  if (role !== null && rank(role) >= rank(minimum)) return { isAllowed: true, role };
  return { isAllowed: false, role };
}
