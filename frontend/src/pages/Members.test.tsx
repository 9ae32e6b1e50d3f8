import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Member, Me, OrgRole } from "../api/client";
import { ME, installFakeFetch } from "../test/fakeFetch";
import { renderPage } from "../test/render";
import { MembersPage } from "./Members";

afterEach(() => vi.unstubAllGlobals());

function member(id: string, email: string, role: OrgRole): Member {
  return {
    id,
    role,
    joined_at: "2026-01-01T00:00:00Z",
    user: { id: `u-${id}`, email, name: "", email_verified: true },
  };
}

const PEOPLE = [
  member("1", "owner@acme.test", "owner"),
  member("2", "admin@acme.test", "admin"),
  member("3", "ada@example.com", "member"),
];

function meAs(role: OrgRole, email: string, id: string): Me {
  return {
    user: { ...ME.user, id, email },
    organizations: [{ id: "o-1", name: "Acme", slug: "acme", role }],
  };
}

function row(email: string) {
  return within(screen.getAllByTestId("member-row").find((r) => r.dataset.email === email)!);
}

describe("members: what each role may do", () => {
  it("a member sees the list but no role controls, and can only leave", async () => {
    installFakeFetch({ "GET /api/orgs/acme/members": { body: { results: PEOPLE, next: null, previous: null } } });
    renderPage(<MembersPage />, { role: "member", me: meAs("member", "ada@example.com", "u-3") });

    await screen.findAllByTestId("member-row");
    expect(screen.queryAllByRole("combobox")).toHaveLength(0);
    expect(screen.queryByRole("button", { name: /^Remove/ })).toBeNull();
    expect(row("ada@example.com").getByRole("button", { name: "Leave" })).toBeInTheDocument();
  });

  it("an admin changes roles of non-owners, cannot touch owners, nor grant owner", async () => {
    installFakeFetch({ "GET /api/orgs/acme/members": { body: { results: PEOPLE, next: null, previous: null } } });
    renderPage(<MembersPage />, { role: "admin", me: meAs("admin", "admin@acme.test", "u-2") });

    await screen.findAllByTestId("member-row");
    expect(row("owner@acme.test").queryByRole("combobox")).toBeNull();
    expect(row("owner@acme.test").queryByRole("button", { name: /Remove/ })).toBeNull();
    const select = row("ada@example.com").getByRole("combobox", { name: "Role of ada@example.com" });
    const options = within(select).getAllByRole("option").map((o) => o.getAttribute("value"));
    expect(options).not.toContain("owner");
    expect(row("ada@example.com").getByRole("button", { name: "Remove ada@example.com" })).toBeInTheDocument();
  });

  it("an owner changes a role and a refusal from the server is shown", async () => {
    const { calls } = installFakeFetch({
      "GET /api/orgs/acme/members": { body: { results: PEOPLE, next: null, previous: null } },
      "PATCH /api/orgs/acme/members/1": {
        status: 409,
        body: { detail: "This is the organisation's last owner.", code: "last_owner", fields: {} },
      },
      "GET /api/auth/csrf": { status: 204, cookies: ["csrftoken=t"] },
    });
    renderPage(<MembersPage />, { role: "owner", me: meAs("owner", "owner@acme.test", "u-1") });

    await screen.findAllByTestId("member-row");
    await userEvent.selectOptions(row("owner@acme.test").getByRole("combobox"), "admin");
    expect(await screen.findByRole("alert")).toHaveTextContent("last owner");
    expect(calls.find((c) => c.method === "PATCH")!.body).toEqual({ role: "admin" });
  });
});
