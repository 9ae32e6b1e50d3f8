import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ME, installFakeFetch } from "../test/fakeFetch";
import { renderPage } from "../test/render";
import { ApiKeysPage } from "./ApiKeys";
import { InvitationsPage } from "./Invitations";

afterEach(() => vi.unstubAllGlobals());

const EMPTY_PAGE = { results: [], next: null, previous: null };
const WORKSPACES = {
  results: [{ id: "ws-1", name: "Research", created_at: "2026-01-01T00:00:00Z", archived: false, role: "owner" }],
  next: null,
  previous: null,
};

describe("invitations", () => {
  it("sends the invitation with its workspace role and shows the accept link to copy", async () => {
    document.cookie = "csrftoken=t; path=/";
    const { calls } = installFakeFetch({
      "GET /api/orgs/acme/workspaces": { body: WORKSPACES },
      "GET /api/orgs/acme/invitations": { body: EMPTY_PAGE },
      "POST /api/orgs/acme/invitations": (request) => ({
        status: 201,
        body: {
          id: "inv-1",
          email: (request.body as { email: string }).email,
          role: "member",
          workspace_id: "ws-1",
          workspace_role: "editor",
          invited_by: "ada@example.com",
          created_at: "2026-01-01T00:00:00Z",
          expires_at: "2026-01-08T00:00:00Z",
          status: "open",
          accept_url: "http://console.test/invitations/tok-abc",
        },
      }),
    });
    renderPage(<InvitationsPage />, { role: "admin", me: ME });
    const form = within(await screen.findByRole("form", { name: "Invite" }));

    // admins cannot invite owners
    const roles = within(form.getByLabelText("Organisation role")).getAllByRole("option");
    expect(roles.map((o) => o.getAttribute("value"))).toEqual(["admin", "member", "billing"]);
    expect(form.getByLabelText("Workspace role")).toBeDisabled();
    await userEvent.type(form.getByLabelText("Email"), "carl@example.com");
    await userEvent.selectOptions(await form.findByLabelText("Workspace (optional)"), "ws-1");
    await userEvent.selectOptions(form.getByLabelText("Workspace role"), "editor");
    await userEvent.click(form.getByRole("button", { name: "Send invitation" }));

    expect(await screen.findByTestId("accept-url")).toHaveValue("http://console.test/invitations/tok-abc");
    expect(screen.getByRole("button", { name: "Copy invitation link" })).toBeInTheDocument();
    expect(calls.find((c) => c.method === "POST")!.body).toEqual({
      email: "carl@example.com",
      role: "member",
      workspace_id: "ws-1",
      workspace_role: "editor",
    });
  });
});

describe("API keys", () => {
  it("shows a new key once, with a warning, and never lists it again", async () => {
    document.cookie = "csrftoken=t; path=/";
    const created = {
      id: "k-1",
      name: "CI",
      prefix: "ab12cd34",
      role: "member",
      workspace_id: null,
      user_email: "ada@example.com",
      created_at: "2026-01-01T00:00:00Z",
      last_used_at: null,
      revoked: false,
    };
    let listed: unknown[] = [];
    installFakeFetch({
      "GET /api/orgs/acme/workspaces": { body: WORKSPACES },
      "GET /api/orgs/acme/api-keys": () => ({ body: { results: listed, next: null, previous: null } }),
      "POST /api/orgs/acme/api-keys": () => {
        listed = [created];
        return { status: 201, body: { ...created, key: "ff_ab12cd34_SECRET" } };
      },
    });
    renderPage(<ApiKeysPage />, { role: "member", me: ME });
    await userEvent.click(await screen.findByRole("button", { name: "Create API key" }));
    const dialog = within(screen.getByRole("dialog", { name: "Create API key" }));
    // a member caps organisation keys at member
    expect(within(dialog.getByLabelText("Role cap")).getAllByRole("option").map((o) => o.getAttribute("value"))).toEqual([
      "member",
    ]);
    await userEvent.type(dialog.getByLabelText("Name"), "CI");
    await userEvent.click(dialog.getByRole("button", { name: "Create key" }));

    const shown = await screen.findByTestId("api-key-created");
    expect(within(shown).getByTestId("api-key-secret")).toHaveValue("ff_ab12cd34_SECRET");
    expect(shown).toHaveTextContent("only time the key is shown");
    await userEvent.click(within(shown).getByRole("button", { name: "I have stored it" }));

    expect(await screen.findByTestId("api-key-row")).toHaveTextContent("ab12cd34");
    expect(document.body).not.toHaveTextContent("SECRET");
  });
});
