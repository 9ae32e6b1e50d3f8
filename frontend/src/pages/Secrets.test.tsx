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
    allowed_flows: [],
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

  it("rotates the vault key of your secrets after confirmation and says what it did", async () => {
    const { calls } = open({
      routes: { "POST /api/orgs/acme/secrets/rotate-key": { body: { epoch: 3, rewrapped: 2 } } },
    });
    await personalSection().findByTestId("secret-row");

    await userEvent.click(personalSection().getByRole("button", { name: "Rotate key" }));
    const dialog = within(screen.getByRole("dialog", { name: "Rotate the key?" }));
    expect(dialog.getByText(/Re-encrypts every secret of yours under a new key; values do not change/)).toBeInTheDocument();
    expect(calls.some((c) => c.path.endsWith("/rotate-key"))).toBe(false); // nothing sent before confirming
    await userEvent.click(dialog.getByRole("button", { name: "Rotate key" }));

    const status = await personalSection().findByText("Key rotated: epoch 3, 2 secrets re-encrypted.");
    expect(status.closest("[role=status]")).not.toBeNull();
    expect(screen.queryByRole("dialog")).toBeNull();
    const posts = calls.filter((c) => c.method === "POST");
    expect(posts.map((c) => c.path)).toEqual(["/api/orgs/acme/secrets/rotate-key"]);
  });

  it("rotates a workspace's key with the shared endpoint, for a workspace owner", async () => {
    const { calls } = open({
      role: "member",
      wsRole: "owner",
      routes: { "POST /api/orgs/acme/workspaces/ws-1/secrets/rotate-key": { body: { epoch: 2, rewrapped: 1 } } },
    });
    await sharedRow();

    await userEvent.click(sharedSection().getByRole("button", { name: "Rotate key" }));
    const dialog = within(screen.getByRole("dialog", { name: "Rotate the key?" }));
    expect(dialog.getByText(/every secret shared with Research under a new key; values do not change/)).toBeInTheDocument();
    await userEvent.click(dialog.getByRole("button", { name: "Rotate key" }));

    const status = await sharedSection().findByText("Key rotated: epoch 2, 1 secret re-encrypted.");
    expect(status.closest("[role=status]")).not.toBeNull();
    expect(calls.find((c) => c.method === "POST")!.path).toBe("/api/orgs/acme/workspaces/ws-1/secrets/rotate-key");
    expect(personalSection().queryByText(/Key rotated/)).toBeNull();
  });

  it("shows a refused key rotation (403) in the dialog", async () => {
    open({
      routes: {
        "POST /api/orgs/acme/secrets/rotate-key": {
          status: 403,
          body: { detail: "Not allowed for your role.", code: "forbidden", fields: {} },
        },
      },
    });
    await personalSection().findByTestId("secret-row");

    await userEvent.click(personalSection().getByRole("button", { name: "Rotate key" }));
    const dialog = within(screen.getByRole("dialog", { name: "Rotate the key?" }));
    await userEvent.click(dialog.getByRole("button", { name: "Rotate key" }));

    expect(await dialog.findByRole("alert")).toHaveTextContent("Not allowed for your role.");
    expect(screen.queryByText(/Key rotated/)).toBeNull();
  });

  it("a member without manage rights sees no shared \"Rotate key\", but can rotate their own", async () => {
    open({ role: "member", wsRole: "editor" });

    await sharedRow();
    expect(sharedSection().queryByRole("button", { name: "Rotate key" })).toBeNull();
    await personalSection().findByTestId("secret-row");
    expect(personalSection().getByRole("button", { name: "Rotate key" })).toBeInTheDocument();
  });

  it("lists a shared secret's last uses, with links to the runs, for any member", async () => {
    const runId = "0b4f6a2e-1111-4222-8333-944455556666";
    const { calls } = open({
      role: "member",
      wsRole: "viewer",
      routes: {
        "GET /api/orgs/acme/workspaces/ws-1/secrets/s-9/uses": {
          body: [
            { at: "2026-02-03T10:00:00Z", run_id: runId, node_id: "notify", caller_email: "bob@acme.test" },
            { at: "2026-02-02T09:00:00Z", run_id: null, node_id: null, caller_email: null },
          ],
        },
      },
    });
    await sharedRow();

    const toggle = sharedSection().getByRole("button", { name: "Uses of SLACK_TOKEN" });
    expect(toggle).toHaveAttribute("aria-expanded", "false");
    await userEvent.click(toggle);
    expect(toggle).toHaveAttribute("aria-expanded", "true");

    const table = await sharedSection().findByRole("table", { name: "Last uses of SLACK_TOKEN" });
    const entries = within(table).getAllByTestId("secret-use");
    expect(entries).toHaveLength(2);
    expect(entries[0]).toHaveTextContent("notify");
    expect(entries[0]).toHaveTextContent("bob@acme.test");
    expect(within(entries[0]!).getByRole("link", { name: runId })).toHaveAttribute(
      "href",
      `/orgs/acme/workspaces/ws-1/runs/${runId}`,
    );
    expect(within(entries[1]!).queryByRole("link")).toBeNull();
    expect(calls.some((c) => c.path === "/api/orgs/acme/workspaces/ws-1/secrets/s-9/uses")).toBe(true);

    await userEvent.click(toggle);
    expect(sharedSection().queryByRole("table", { name: "Last uses of SLACK_TOKEN" })).toBeNull();
  });

  it("lists a personal secret's uses with the run id as text, and says when it has none", async () => {
    const runId = "7c1d2e3f-aaaa-4bbb-8ccc-ddddeeeeffff";
    open({
      personal: [secret("s-1", "OPENAI_KEY"), secret("s-2", "UNUSED_KEY")],
      routes: {
        "GET /api/orgs/acme/secrets/s-1/uses": {
          body: [{ at: "2026-02-03T10:00:00Z", run_id: runId, node_id: "summarise", caller_email: "ada@example.com" }],
        },
        "GET /api/orgs/acme/secrets/s-2/uses": { body: [] },
      },
    });
    await personalSection().findAllByTestId("secret-row");

    await userEvent.click(personalSection().getByRole("button", { name: "Uses of OPENAI_KEY" }));
    const table = await personalSection().findByRole("table", { name: "Last uses of OPENAI_KEY" });
    const entry = within(table).getAllByTestId("secret-use")[0]!;
    expect(entry).toHaveTextContent(runId);
    expect(entry).toHaveTextContent("summarise");
    expect(entry).toHaveTextContent("ada@example.com");
    // The workspace of a personal secret's run is not known: no link.
    expect(within(entry).queryByRole("link")).toBeNull();

    await userEvent.click(personalSection().getByRole("button", { name: "Uses of UNUSED_KEY" }));
    expect(await personalSection().findByText("Not used by any run yet.")).toBeInTheDocument();
    expect(personalSection().queryByRole("table", { name: "Last uses of OPENAI_KEY" })).toBeNull();
  });
});
