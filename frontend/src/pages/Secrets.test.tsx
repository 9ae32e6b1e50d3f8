import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { OrgRole, Schemas, Workspace } from "../api/client";
import { ME, installFakeFetch, type Recorded, type Reply } from "../test/fakeFetch";
import { renderPage } from "../test/render";
import { SecretsPage } from "./Secrets";

beforeEach(() => {
  document.cookie = "csrftoken=t; path=/";
});
afterEach(() => vi.unstubAllGlobals());

type Secret = Schemas["SecretOut"];

function secret(id: string, name: string, extra: Partial<Secret> = {}): Secret {
  return {
    id,
    name,
    description: "",
    scope: "personal",
    owner_email: "ada@example.com",
    workspace_id: null,
    created_by_email: "ada@example.com",
    created_at: "2026-01-01T00:00:00Z",
    rotated_at: null,
    last_used_at: null,
    ...extra,
  };
}

const WS: Workspace = { id: "ws-1", name: "Research", created_at: "2026-01-01T00:00:00Z", archived: false, role: "owner" };
const SHARED = [
  secret("s-9", "SLACK_TOKEN", {
    scope: "workspace",
    owner_email: null,
    workspace_id: "ws-1",
    created_by_email: "owner@acme.test",
    description: "Posts to #alerts",
  }),
];

function open({
  role = "owner",
  wsRole = "owner",
  personal = [secret("s-1", "OPENAI_KEY", { description: "Team OpenAI account" })],
  routes = {},
}: {
  role?: OrgRole;
  wsRole?: Workspace["role"];
  personal?: Secret[];
  routes?: Record<string, Reply | ((request: Recorded) => Reply)>;
} = {}) {
  const fake = installFakeFetch({
    "GET /api/orgs/acme/workspaces": { body: { results: [{ ...WS, role: wsRole }], next: null, previous: null } },
    "GET /api/orgs/acme/secrets": { body: personal },
    "GET /api/orgs/acme/workspaces/ws-1/secrets": { body: SHARED },
    ...routes,
  });
  renderPage(<SecretsPage />, { role, me: ME });
  return fake;
}

const personalSection = () => within(screen.getByTestId("personal-secrets"));
const sharedSection = () => within(screen.getByTestId("shared-secrets"));
/** The shared section appears once the workspaces are loaded. */
const sharedRow = async () => within(await screen.findByTestId("shared-secrets")).findByTestId("secret-row");
const addForm = () => within(screen.getByRole("form", { name: "Add a secret of yours" }));

describe("secrets page", () => {
  it("lists names and details, never a value", async () => {
    // Even if a server leaked a value, the page shows only what it knows to show.
    open({ personal: [{ ...secret("s-1", "OPENAI_KEY"), value: "sk-LEAKED" } as Secret] });

    const row = await personalSection().findByTestId("secret-row");
    expect(row).toHaveTextContent("OPENAI_KEY");
    expect(row).toHaveTextContent("ada@example.com");
    expect(row).toHaveTextContent("never"); // not used yet
    const shared = await sharedRow();
    expect(shared).toHaveTextContent("SLACK_TOKEN");
    expect(shared).toHaveTextContent("Posts to #alerts");
    expect(screen.getByRole("heading", { name: "Shared with Research" })).toBeInTheDocument();
    expect(document.body).not.toHaveTextContent("sk-LEAKED");
    for (const input of screen.getAllByRole("textbox")) expect(input).not.toHaveValue("sk-LEAKED");
    // How nodes refer to a secret is explained.
    expect(screen.getByText("api_key_secret")).toBeInTheDocument();
    expect(screen.getByText("secret_headers")).toBeInTheDocument();
  });

  it("adds a secret: posts the value once, clears the input and lists the name", async () => {
    let listed: Secret[] = [];
    const { calls } = open({
      personal: [],
      routes: {
        "GET /api/orgs/acme/secrets": () => ({ body: listed }),
        "POST /api/orgs/acme/secrets": (request) => {
          const body = request.body as { name: string; description: string };
          listed = [secret("s-2", body.name, { description: body.description })];
          return { status: 201, body: listed[0] };
        },
      },
    });
    await personalSection().findByText("No secrets yet");

    const value = addForm().getByLabelText("Value");
    expect(value).toHaveAttribute("type", "password");
    expect(value).toHaveAttribute("autocomplete", "off");
    await userEvent.type(addForm().getByLabelText("Name"), "ANTHROPIC_KEY");
    await userEvent.type(value, "sk-ant-123");
    await userEvent.type(addForm().getByLabelText("Description (optional)"), "Claude");
    await userEvent.click(addForm().getByRole("button", { name: "Add secret" }));

    expect(await personalSection().findByTestId("secret-row")).toHaveTextContent("ANTHROPIC_KEY");
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe("/api/orgs/acme/secrets");
    expect(post.body).toEqual({ name: "ANTHROPIC_KEY", value: "sk-ant-123", description: "Claude" });
    expect(addForm().getByLabelText("Value")).toHaveValue("");
    expect(addForm().getByLabelText("Name")).toHaveValue("");
    expect(document.body).not.toHaveTextContent("sk-ant-123");
  });

  it("shows a duplicate name (409) under the name input", async () => {
    open({
      routes: {
        "POST /api/orgs/acme/secrets": {
          status: 409,
          body: {
            detail: "There is already a secret named 'OPENAI_KEY' here: rotate its value instead.",
            code: "secret_exists",
            fields: {},
          },
        },
      },
    });
    await personalSection().findByTestId("secret-row");

    await userEvent.type(addForm().getByLabelText("Name"), "OPENAI_KEY");
    await userEvent.type(addForm().getByLabelText("Value"), "sk-2");
    await userEvent.click(addForm().getByRole("button", { name: "Add secret" }));

    const name = addForm().getByLabelText("Name");
    await vi.waitFor(() => expect(name).toHaveAttribute("aria-invalid", "true"));
    expect(name).toHaveAccessibleDescription(expect.stringContaining("already a secret named 'OPENAI_KEY'"));
    expect(name).toHaveValue("OPENAI_KEY");
    expect(addForm().getByLabelText("Value")).toHaveValue("");
  });

  it("shows the server's field errors (422) next to their inputs", async () => {
    open({
      routes: {
        "POST /api/orgs/acme/secrets": {
          status: 422,
          body: {
            detail: "The secret was not stored: The value is empty.",
            code: "invalid",
            fields: { value: "The value is empty." },
          },
        },
      },
    });
    await personalSection().findByTestId("secret-row");

    await userEvent.type(addForm().getByLabelText("Name"), "EMPTY");
    await userEvent.click(addForm().getByRole("button", { name: "Add secret" }));

    const value = addForm().getByLabelText("Value");
    await vi.waitFor(() => expect(value).toHaveAccessibleDescription(expect.stringContaining("The value is empty.")));
    expect(addForm().getByText("Please correct the highlighted field.")).toBeInTheDocument();
  });

  it("rotates a value with PUT to /value", async () => {
    const { calls } = open({
      routes: {
        "PUT /api/orgs/acme/secrets/s-1/value": {
          body: secret("s-1", "OPENAI_KEY", { rotated_at: new Date().toISOString() }),
        },
      },
    });
    await personalSection().findByTestId("secret-row");

    await userEvent.click(personalSection().getByRole("button", { name: "Rotate OPENAI_KEY" }));
    const dialog = within(screen.getByRole("dialog", { name: "Rotate OPENAI_KEY" }));
    const value = dialog.getByLabelText("New value");
    expect(value).toHaveAttribute("type", "password");
    expect(value).toHaveAttribute("autocomplete", "off");
    await userEvent.type(value, "sk-new");
    await userEvent.click(dialog.getByRole("button", { name: "Rotate" }));

    await vi.waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const put = calls.find((c) => c.method === "PUT")!;
    expect(put.path).toBe("/api/orgs/acme/secrets/s-1/value");
    expect(put.body).toEqual({ value: "sk-new" });
  });

  it("deletes a shared secret after confirmation, for a workspace owner", async () => {
    const { calls } = open({
      role: "member",
      wsRole: "owner",
      routes: { "DELETE /api/orgs/acme/workspaces/ws-1/secrets/s-9": { status: 204 } },
    });
    await sharedRow();

    await userEvent.click(sharedSection().getByRole("button", { name: "Delete SLACK_TOKEN" }));
    const dialog = within(screen.getByRole("dialog", { name: "Delete SLACK_TOKEN?" }));
    await userEvent.click(dialog.getByRole("button", { name: "Delete secret" }));

    await vi.waitFor(() => expect(calls.some((c) => c.method === "DELETE")).toBe(true));
    expect(calls.find((c) => c.method === "DELETE")!.path).toBe("/api/orgs/acme/workspaces/ws-1/secrets/s-9");
  });

  it("switches the shared section to the workspace picked", async () => {
    const { calls } = open({
      routes: {
        "GET /api/orgs/acme/workspaces": {
          body: { results: [WS, { ...WS, id: "ws-2", name: "Ops", role: "viewer" }], next: null, previous: null },
        },
        "GET /api/orgs/acme/workspaces/ws-2/secrets": {
          body: [secret("s-7", "PAGERDUTY_KEY", { scope: "workspace", owner_email: null, workspace_id: "ws-2" })],
        },
      },
    });
    await sharedRow();

    await userEvent.selectOptions(sharedSection().getByLabelText("Workspace"), "ws-2");

    expect(await screen.findByRole("heading", { name: "Shared with Ops" })).toBeInTheDocument();
    expect(await sharedRow()).toHaveTextContent("PAGERDUTY_KEY");
    expect(calls.some((c) => c.path === "/api/orgs/acme/workspaces/ws-2/secrets")).toBe(true);
    // A viewer of Ops, but an organisation owner: owners and admins manage every workspace's secrets.
    expect(sharedSection().getByRole("button", { name: "Rotate PAGERDUTY_KEY" })).toBeInTheDocument();
  });

  it("a member without ownership of the workspace sees shared secrets but cannot manage them", async () => {
    open({ role: "member", wsRole: "editor" });

    expect(await sharedRow()).toHaveTextContent("SLACK_TOKEN");
    expect(sharedSection().queryByRole("button", { name: /Rotate|Delete|Add secret/ })).toBeNull();
    expect(sharedSection().queryByRole("form")).toBeNull();
    expect(sharedSection().getByText(/Only owners of Research/)).toBeInTheDocument();
    // Their own secrets stay theirs to manage.
    await personalSection().findByTestId("secret-row");
    expect(personalSection().getByRole("button", { name: "Rotate OPENAI_KEY" })).toBeInTheDocument();
    expect(personalSection().getByRole("button", { name: "Delete OPENAI_KEY" })).toBeInTheDocument();
  });
});
