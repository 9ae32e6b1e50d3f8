/**
 * What the console offers each role. The server enforces all of it; this only hides what
 * would be refused, so people are not invited to click buttons that fail.
 */
import type { OrgRole, WorkspaceRole } from "../api/client";

export type Section = "workspaces" | "members" | "invitations" | "audit" | "api-keys" | "secrets" | "costs" | "billing";

const MANAGERS: readonly (OrgRole | null | undefined)[] = ["owner", "admin"];

export function isManager(role: OrgRole | null | undefined): boolean {
  return MANAGERS.includes(role);
}

/** The sections of the organisation this role sees, in sidebar order. */
export function sectionsFor(role: OrgRole | null | undefined): Section[] {
  switch (role) {
    case "owner":
    case "admin":
      return ["workspaces", "members", "invitations", "audit", "api-keys", "secrets", "costs", "billing"];
    case "member":
      return ["workspaces", "members", "api-keys", "secrets"];
    case "billing":
      return ["costs", "billing"];
    default:
      return [];
  }
}

export function homeSection(role: OrgRole | null | undefined): Section {
  return role === "billing" ? "billing" : "workspaces";
}

export const can = {
  manageMembers: isManager,
  invite: isManager,
  createWorkspace: isManager,
  readAudit: isManager,
  /** Budgets, the kill switch and alert webhooks (billing members only watch the costs). */
  manageCosts: isManager,
  /** Subscribe, change or cancel the plan (Stripe Checkout and portal); admins only see billing. */
  manageBilling: (role: OrgRole | null | undefined) => role === "owner" || role === "billing",
  /** Only owners make or unmake owners. */
  grantOwner: (role: OrgRole | null | undefined) => role === "owner",
  /** Changing someone's role: managers, and only owners touch an owner's role. */
  changeRoleOf: (actor: OrgRole | null | undefined, target: OrgRole) =>
    isManager(actor) && (target !== "owner" || actor === "owner"),
  removeMember: (actor: OrgRole | null | undefined, target: OrgRole) =>
    isManager(actor) && (target !== "owner" || actor === "owner"),
  /** Rename, archive and share a workspace: its owners (org owners and admins act as owners). */
  manageWorkspace: (orgRole: OrgRole | null | undefined, wsRole: WorkspaceRole | null | undefined) =>
    isManager(orgRole) || wsRole === "owner",
  /** Start runs of a workspace's flows: its editors and owners (org owners and admins act as owners). */
  runFlows: (orgRole: OrgRole | null | undefined, wsRole: WorkspaceRole | null | undefined) =>
    isManager(orgRole) || wsRole === "owner" || wsRole === "editor",
};

/** Roles an actor may hand out in the organisation. */
export function assignableOrgRoles(actor: OrgRole | null | undefined): OrgRole[] {
  if (actor === "owner") return ["owner", "admin", "member", "billing"];
  if (actor === "admin") return ["admin", "member", "billing"];
  return [];
}

export const ORG_ROLE_HELP: Record<OrgRole, string> = {
  owner: "Everything, including making other owners",
  admin: "Members, invitations, workspaces and the audit log",
  member: "Workspaces they are given a role on",
  billing: "Billing and costs only",
};

export const WORKSPACE_ROLES: WorkspaceRole[] = ["viewer", "editor", "owner"];

/** Org roles an API key may be capped at (never above the creator's own). */
export function keyOrgRoles(actor: OrgRole | null | undefined): OrgRole[] {
  switch (actor) {
    case "owner":
      return ["owner", "admin", "member", "billing"];
    case "admin":
      return ["admin", "member"];
    case "member":
      return ["member"];
    case "billing":
      return ["billing"];
    default:
      return [];
  }
}

/** Workspace roles an API key may be capped at, given the creator's role on that workspace. */
export function keyWorkspaceRoles(held: WorkspaceRole | null | undefined): WorkspaceRole[] {
  const rank = held ? WORKSPACE_ROLES.indexOf(held) : -1;
  return WORKSPACE_ROLES.filter((_, i) => i <= rank).reverse();
}
