import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Flow, OrgRole, Schemas, Workspace, WorkspaceRole } from "../api/client";
import { ToastProvider } from "../components/toast";
import { AuthProvider } from "../lib/auth";
import { OrgContext } from "../lib/org";
import { ME, installFakeFetch, type Recorded, type Reply } from "../test/fakeFetch";
import { AppPage, WorkspaceAppsPage, runsEndpoint } from "./Apps";

type App = Schemas["AppOut"];
type AppKey = Schemas["AppKeyOut"];
type Version = Schemas["VersionOut"];

beforeEach(() => {
  document.cookie = "csrftoken=t; path=/";
});
afterEach(() => {
  vi.unstubAllGlobals();
});

const BASE = "/api/orgs/acme/workspaces/ws-1";
const V1 = "1".repeat(64);
const V2 = "2".repeat(64);
const V3 = "3".repeat(64);

function workspace(role: WorkspaceRole): Workspace {
  return { id: "ws-1", name: "Research", created_at: "2026-01-01T00:00:00Z", archived: false, role };
}

const FLOWS: Flow[] = [
  {
    id: "f-1",
    name: "Support bot",
    description: "",
    current_version: V3,
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-03T00:00:00Z",
  },
  {
    id: "f-2",
    name: "Draft",
    description: "",
    current_version: null,
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
  },
];

function app(extra: Partial<App> = {}): App {
  const slug = extra.slug ?? "support-bot";
  return {
    id: "a-1",
    flow_id: "f-1",
    flow_name: "Support bot",
    version: V2,
    slug,
    title: "Support bot",
    description: "Answers questions about the product",
    access: "public",
    visitor_rate_per_minute: 10,
    app_rate_per_minute: 600,
    allowed_origins: ["https://blog.example.com"],
    published: true,
    published_by_email: "ada@example.com",
    url: `https://fireflow.example.com/apps/acme/${slug}`,
    embed_html: `<iframe src="https://fireflow.example.com/apps/acme/${slug}?embed=1" title="Support bot"></iframe>`,
    created_at: "2026-01-02T00:00:00Z",
    updated_at: "2026-01-02T00:00:00Z",
    ...extra,
  };
}

function version(hash: string, message: string, created_at: string): Version {
  return { hash, message, created_at, author_email: "ada@example.com", parent: null };
}

const VERSIONS = [
  version(V3, "Friendlier answers", "2026-01-03T00:00:00Z"),
  version(V2, "Cite sources", "2026-01-02T00:00:00Z"),
  version(V1, "First draft", "2026-01-01T00:00:00Z"),
];

function key(extra: Partial<AppKey> = {}): AppKey {
  return {
    id: "k-1",
    name: "Partner portal",
    prefix: "ffa_ab12",
    created_by_email: "ada@example.com",
    created_at: "2026-01-02T00:00:00Z",
    last_used_at: null,
    revoked_at: null,
    ...extra,
  };
}

/** The app's pages at their own routes (they read :wsId and :appId), as App.tsx mounts them. */
function open(
  path: string,
  {
    role = "member",
    wsRole = "editor",
    routes = {},
  }: { role?: OrgRole; wsRole?: WorkspaceRole; routes?: Record<string, Reply | ((request: Recorded) => Reply)> } = {},
) {
  const fake = installFakeFetch({
    [`GET ${BASE}`]: { body: workspace(wsRole) },
    [`GET ${BASE}/apps`]: { body: [app()] },
    [`GET ${BASE}/apps/a-1`]: { body: app() },
    [`GET ${BASE}/apps/a-1/keys`]: { body: [key()] },
    [`GET ${BASE}/flows`]: { body: { results: FLOWS, next: null, previous: null } },
    [`GET ${BASE}/flows/f-1/versions`]: { body: { results: VERSIONS, next: null, previous: null } },
    ...routes,
  });
  const org = { id: "o-1", name: "Acme", slug: "acme", created_at: "2026-01-01T00:00:00Z", role };
  render(
    <MemoryRouter initialEntries={[path]}>
      <ToastProvider>
        <AuthProvider initial={ME}>
          <OrgContext.Provider value={{ org, role, reload: () => undefined }}>
            <Routes>
              <Route path="/orgs/:slug/workspaces/:wsId/apps" element={<WorkspaceAppsPage />} />
              <Route path="/orgs/:slug/workspaces/:wsId/apps/:appId" element={<AppPage />} />
            </Routes>
          </OrgContext.Provider>
        </AuthProvider>
      </ToastProvider>
    </MemoryRouter>,
  );
  return fake;
}

const LIST = "/orgs/acme/workspaces/ws-1/apps";
const DETAIL = "/orgs/acme/workspaces/ws-1/apps/a-1";
const publishDialog = () => within(screen.getByRole("form", { name: "Publish a flow" }));
const settingsForm = () => within(screen.getByRole("form", { name: "Settings" }));

describe("runsEndpoint", () => {
  it("is the app's address under /api, with /runs", () => {
    expect(runsEndpoint("https://ff.example.com/apps/acme/bot")).toBe("https://ff.example.com/api/apps/acme/bot/runs");
  });
});

describe("apps list", () => {
  it("lists apps with their address (new tab), flow, version, access and state", async () => {
    open(LIST, { routes: { [`GET ${BASE}/apps`]: { body: [app(), app({ id: "a-2", slug: "old", title: "Old", published: false, access: "key" })] } } });

    const rows = await screen.findAllByTestId("app-row");
    expect(rows).toHaveLength(2);
    const first = within(rows[0]!);
    expect(first.getByRole("link", { name: "Support bot" })).toHaveAttribute("href", DETAIL);
    const address = first.getByRole("link", { name: "/apps/acme/support-bot" });
    expect(address).toHaveAttribute("href", "https://fireflow.example.com/apps/acme/support-bot");
    expect(address).toHaveAttribute("target", "_blank");
    expect(address).toHaveAttribute("rel", expect.stringContaining("noopener"));
    expect(rows[0]).toHaveTextContent("222222222222");
    expect(rows[0]).toHaveTextContent("Anyone with the link");
    expect(rows[0]).toHaveTextContent("Published");
    expect(rows[1]).toHaveTextContent("Holders of an app key");
    expect(rows[1]).toHaveTextContent("Unpublished");
  });

  it("publishes a flow: sends the settings typed, the flow's current version, then opens the app", async () => {
    let published = app();
    const { calls } = open(LIST, {
      routes: {
        [`POST ${BASE}/apps`]: (request) => {
          published = app({ ...(request.body as Partial<App>), id: "a-1" });
          return { status: 201, body: published };
        },
        [`GET ${BASE}/apps/a-1`]: () => ({ body: published }),
      },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Publish a flow" }));
    const dialog = publishDialog();
    // A flow with no saved version cannot be published.
    expect(await dialog.findByRole("option", { name: "Draft (not saved yet)" })).toBeDisabled();

    await userEvent.selectOptions(dialog.getByLabelText("Flow"), "f-1");
    expect(dialog.getByText("333333333333")).toBeInTheDocument();
    // The title starts as the flow's name and the slug follows the title.
    const title = dialog.getByLabelText("Title");
    expect(title).toHaveValue("Support bot");
    await userEvent.clear(title);
    await userEvent.type(title, "Ask Acme Support");
    expect(dialog.getByLabelText("Address")).toHaveValue("ask-acme-support");
    await userEvent.type(dialog.getByLabelText("Description (optional)"), "Questions about the product");
    await userEvent.click(dialog.getByRole("radio", { name: /Holders of an app key/ }));
    const perVisitor = dialog.getByLabelText("Runs per minute per visitor");
    await userEvent.clear(perVisitor);
    await userEvent.type(perVisitor, "5");
    await userEvent.type(
      dialog.getByLabelText("Sites that may embed it"),
      "https://blog.example.com\n\nhttps://docs.example.com",
    );
    await userEvent.click(dialog.getByRole("button", { name: "Publish" }));

    expect(await screen.findByRole("heading", { name: /Ask Acme Support/ })).toBeInTheDocument();
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe(`${BASE}/apps`);
    expect(post.body).toEqual({
      flow_id: "f-1",
      version: V3,
      slug: "ask-acme-support",
      title: "Ask Acme Support",
      description: "Questions about the product",
      access: "key",
      visitor_rate_per_minute: 5,
      app_rate_per_minute: 600,
      allowed_origins: ["https://blog.example.com", "https://docs.example.com"],
    });
  });

  it("shows a taken slug (409) under the address", async () => {
    open(LIST, {
      routes: {
        [`POST ${BASE}/apps`]: {
          status: 409,
          body: {
            detail: "The address /apps/acme/support-bot is taken in this organisation: choose another slug.",
            code: "slug_taken",
            fields: { slug: "taken" },
          },
        },
      },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Publish a flow" }));
    const dialog = publishDialog();
    await dialog.findByRole("option", { name: "Support bot" });
    await userEvent.selectOptions(dialog.getByLabelText("Flow"), "f-1");
    await userEvent.click(dialog.getByRole("button", { name: "Publish" }));

    const slug = dialog.getByLabelText("Address");
    await vi.waitFor(() => expect(slug).toHaveAttribute("aria-invalid", "true"));
    expect(slug).toHaveAccessibleDescription(expect.stringContaining("/apps/acme/support-bot is taken"));
    expect(dialog.getByText("Please correct the highlighted field.")).toBeInTheDocument();
  });

  it("shows a bad embedding site (422 allowed_origins.1) under the sites, naming its line", async () => {
    open(LIST, {
      routes: {
        [`POST ${BASE}/apps`]: {
          status: 422,
          body: {
            detail: "Some embedding sites are not origins: 'https://a.b/x' is not an origin",
            code: "invalid_origins",
            fields: { "allowed_origins.1": "'https://a.b/x' is not an origin: give scheme and host only" },
          },
        },
      },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Publish a flow" }));
    const dialog = publishDialog();
    await dialog.findByRole("option", { name: "Support bot" });
    await userEvent.selectOptions(dialog.getByLabelText("Flow"), "f-1");
    const sites = dialog.getByLabelText("Sites that may embed it");
    await userEvent.type(sites, "https://ok.example.com\n\nhttps://a.b/x");
    await userEvent.click(dialog.getByRole("button", { name: "Publish" }));

    await vi.waitFor(() => expect(sites).toHaveAttribute("aria-invalid", "true"));
    expect(sites).toHaveAccessibleDescription(expect.stringContaining("Line 3: 'https://a.b/x' is not an origin"));
    expect(dialog.getByText("Please correct the highlighted field.")).toBeInTheDocument();
  });

  it("refuses a rate that is not a whole number without posting", async () => {
    const { calls } = open(LIST);
    await userEvent.click(await screen.findByRole("button", { name: "Publish a flow" }));
    const dialog = publishDialog();
    await dialog.findByRole("option", { name: "Support bot" });
    await userEvent.selectOptions(dialog.getByLabelText("Flow"), "f-1");
    await userEvent.clear(dialog.getByLabelText("Runs per minute in all"));
    await userEvent.click(dialog.getByRole("button", { name: "Publish" }));

    await vi.waitFor(() =>
      expect(dialog.getByLabelText("Runs per minute in all")).toHaveAccessibleDescription(
        expect.stringContaining("A whole number of runs per minute"),
      ),
    );
    expect(calls.some((c) => c.method === "POST")).toBe(false);
  });
});

describe("app page", () => {
  it("marks the published version; one click rolls back with PATCH {version}", async () => {
    let served = V2;
    const { calls } = open(DETAIL, {
      routes: {
        [`PATCH ${BASE}/apps/a-1`]: (request) => {
          served = (request.body as { version: string }).version;
          return { body: app({ version: served }) };
        },
      },
    });
    const rows = await screen.findAllByTestId("app-version-row");
    expect(rows).toHaveLength(3);
    expect(rows[1]).toHaveAttribute("data-published", "true");
    expect(within(rows[1]!).getByText("Published")).toBeInTheDocument();
    expect(within(rows[1]!).queryByRole("button")).toBeNull();
    // Newer than the published one: publish; older: roll back.
    expect(within(rows[0]!).getByRole("button", { name: /^Publish this version/ })).toBeInTheDocument();

    await userEvent.click(within(rows[2]!).getByRole("button", { name: /^Roll back to this version/ }));

    await vi.waitFor(() => expect(screen.getAllByTestId("app-version-row")[2]).toHaveAttribute("data-published", "true"));
    const patches = calls.filter((c) => c.method === "PATCH");
    expect(patches).toHaveLength(1);
    expect(patches[0]!.path).toBe(`${BASE}/apps/a-1`);
    expect(patches[0]!.body).toEqual({ version: V1 });
    expect(await screen.findByText(/Rolled back: Support bot now serves version 111111111111/)).toBeInTheDocument();
  });

  it("shows the embed snippet, the allowed sites and a REST example with the app's runs URL", async () => {
    open(DETAIL);
    expect(await screen.findByTestId("app-embed")).toHaveTextContent('<iframe src="https://fireflow.example.com/apps/acme/support-bot?embed=1"');
    expect(screen.getByRole("button", { name: "Copy embed snippet" })).toBeInTheDocument();
    expect(screen.getByText("https://blog.example.com", { selector: "code" })).toBeInTheDocument();
    const curl = screen.getByTestId("app-curl");
    expect(curl).toHaveTextContent("curl -X POST https://fireflow.example.com/api/apps/acme/support-bot/runs");
    expect(curl).toHaveTextContent("Authorization: Bearer ffa_");
  });

  it("saves only the settings that changed", async () => {
    const { calls } = open(DETAIL, {
      routes: {
        [`PATCH ${BASE}/apps/a-1`]: (request) => ({ body: app(request.body as Partial<App>) }),
      },
    });
    const form = await screen.findByRole("form", { name: "Settings" });
    expect(within(form).getByRole("button", { name: "Save changes" })).toBeDisabled();
    await userEvent.click(settingsForm().getByRole("radio", { name: /Members of the organisation/ }));
    const sites = settingsForm().getByLabelText("Sites that may embed it");
    await userEvent.type(sites, "\nhttps://docs.example.com");
    await userEvent.click(settingsForm().getByRole("button", { name: "Save changes" }));

    expect(await screen.findByText("Settings saved.")).toBeInTheDocument();
    expect(calls.find((c) => c.method === "PATCH")!.body).toEqual({
      access: "members",
      allowed_origins: ["https://blog.example.com", "https://docs.example.com"],
    });
  });

  it("unpublishes after confirmation with PATCH {published: false}", async () => {
    const { calls } = open(DETAIL, {
      routes: { [`PATCH ${BASE}/apps/a-1`]: { body: app({ published: false }) } },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Unpublish" }));
    const dialog = within(screen.getByRole("dialog", { name: "Unpublish Support bot?" }));
    await userEvent.click(dialog.getByRole("button", { name: "Unpublish" }));

    expect(await screen.findByRole("button", { name: "Publish" })).toBeInTheDocument();
    expect(calls.find((c) => c.method === "PATCH")!.body).toEqual({ published: false });
    expect(screen.getByText(/This app is unpublished/)).toBeInTheDocument();
  });

  it("shows a new key once, then only its prefix", async () => {
    let keys: AppKey[] = [];
    const { calls } = open(DETAIL, {
      routes: {
        [`GET ${BASE}/apps/a-1/keys`]: () => ({ body: keys }),
        [`POST ${BASE}/apps/a-1/keys`]: (request) => {
          keys = [key({ id: "k-2", name: (request.body as { name: string }).name, prefix: "ffa_9f3c" })];
          return { status: 201, body: { ...keys[0], key: "ffa_9f3c_secret-value" } };
        },
      },
    });
    const section = within(await screen.findByTestId("app-keys"));
    await section.findByText("No keys");
    await userEvent.click(section.getByRole("button", { name: "New key" }));
    const form = within(screen.getByRole("form", { name: "New key for Support bot" }));
    await userEvent.type(form.getByLabelText("Name"), "CI");
    await userEvent.click(form.getByRole("button", { name: "Make key" }));

    const created = within(await screen.findByTestId("app-key-created"));
    expect(created.getByLabelText("App key")).toHaveValue("ffa_9f3c_secret-value");
    expect(created.getByText(/only time the key is shown/)).toBeInTheDocument();
    expect(calls.find((c) => c.method === "POST")!.body).toEqual({ name: "CI" });

    await userEvent.click(created.getByRole("button", { name: "I have stored it" }));
    const row = await section.findByTestId("app-key-row");
    expect(row).toHaveTextContent("ffa_9f3c…");
    expect(row).toHaveTextContent("never");
    expect(document.body).not.toHaveTextContent("ffa_9f3c_secret-value");
    for (const input of screen.queryAllByRole("textbox")) expect(input).not.toHaveValue("ffa_9f3c_secret-value");
  });

  it("revokes a key after confirmation", async () => {
    const { calls } = open(DETAIL, {
      routes: { [`DELETE ${BASE}/apps/a-1/keys/k-1`]: { status: 204 } },
    });
    const section = within(await screen.findByTestId("app-keys"));
    await userEvent.click(await section.findByRole("button", { name: "Revoke Partner portal" }));
    const dialog = within(screen.getByRole("dialog", { name: "Revoke Partner portal?" }));
    await userEvent.click(dialog.getByRole("button", { name: "Revoke key" }));

    await vi.waitFor(() => expect(calls.some((c) => c.method === "DELETE")).toBe(true));
    expect(calls.find((c) => c.method === "DELETE")!.path).toBe(`${BASE}/apps/a-1/keys/k-1`);
  });

  it("deletes the app after confirmation and goes back to the list", async () => {
    const { calls } = open(DETAIL, {
      routes: { [`DELETE ${BASE}/apps/a-1`]: { status: 204 }, [`GET ${BASE}/apps`]: { body: [] } },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Delete" }));
    const dialog = within(screen.getByRole("dialog", { name: "Delete Support bot?" }));
    await userEvent.click(dialog.getByRole("button", { name: "Delete app" }));

    expect(await screen.findByText("No apps yet")).toBeInTheDocument();
    expect(calls.find((c) => c.method === "DELETE")!.path).toBe(`${BASE}/apps/a-1`);
  });
});

describe("viewers", () => {
  it("see the list without a publish button", async () => {
    open(LIST, { wsRole: "viewer" });
    await screen.findAllByTestId("app-row");
    expect(screen.queryByRole("button", { name: "Publish a flow" })).toBeNull();
  });

  it("see an app's settings, versions, snippets and keys, with no button that writes", async () => {
    const { calls } = open(DETAIL, { wsRole: "viewer" });
    await screen.findAllByTestId("app-version-row");
    await screen.findByTestId("app-key-row");

    const form = settingsForm();
    expect(form.getByLabelText("Title")).toBeDisabled();
    expect(form.getByLabelText("Title")).toHaveValue("Support bot");
    expect(form.getByRole("radio", { name: /Anyone with the link/ })).toBeChecked();
    expect(form.getByRole("radio", { name: /Anyone with the link/ })).toBeDisabled();
    expect(form.getByLabelText("Sites that may embed it")).toBeDisabled();
    const writes = /Save|Discard|Publish|Unpublish|Roll back|Delete|New key|Revoke/;
    expect(screen.queryByRole("button", { name: writes })).toBeNull();
    // Copying is reading.
    expect(screen.getByRole("button", { name: "Copy embed snippet" })).toBeInTheDocument();
    expect(calls.every((c) => c.method === "GET")).toBe(true);
  });

  it("an organisation admin acts as owner of the workspace", async () => {
    open(DETAIL, { role: "admin", wsRole: "viewer" });
    expect(await screen.findByRole("button", { name: "Unpublish" })).toBeInTheDocument();
  });
});
