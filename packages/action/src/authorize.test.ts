import { describe, expect, it } from "vitest";
import { effectiveRole } from "./authorize.ts";

describe("effectiveRole", () => {
  it("uses the exact role name, which tells maintain from write and triage from read", () => {
    expect(effectiveRole({ roleName: "maintain", permission: "write" })).toBe("maintain");
    expect(effectiveRole({ roleName: "triage", permission: "read" })).toBe("triage");
    expect(effectiveRole({ roleName: "admin", permission: "admin" })).toBe("admin");
  });

  it("falls back to the folded permission for custom roles, and gives none for no access", () => {
    expect(effectiveRole({ roleName: "ml-engineer", permission: "write" })).toBe("write");
    expect(effectiveRole({ roleName: "none", permission: "none" })).toBeNull();
  });
});
