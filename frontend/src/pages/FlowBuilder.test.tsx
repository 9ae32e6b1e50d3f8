import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter, Route, Routes } from "react-router";
import type { WorkspaceRole } from "../api/client";
import { NODE_TYPES } from "../builder/fixtures";
import { ToastProvider } from "../components/toast";
import { AuthProvider } from "../lib/auth";
import { OrgContext } from "../lib/org";
import { ME, installFakeFetch } from "../test/fakeFetch";
import { FlowBuilderPage } from "./FlowBuilder";

// React Flow measures its nodes; jsdom has no layout, so give it the browser APIs it reads.
beforeEach(() => {
  class ResizeObserverStub {
    observe() {}
    unobserve() {}
    disconnect() {}
  }
  vi.stubGlobal("ResizeObserver", ResizeObserverStub);
  class DOMMatrixStub {
    m22 = 1;
    constructor(_transform?: string) {}
  }
  vi.stubGlobal("DOMMatrixReadOnly", DOMMatrixStub);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

const BASE = "/api/orgs/acme/workspaces/ws-1";
const DOC = {
  schema: 1,
  nodes: [
    { id: "inp", type: "input", config: { fields: [{ name: "q", type: "text" }] }, position: { x: 0, y: 0 } },
    { id: "ask", type: "llm_chat", config: { provider: "fake", model: "fake-echo" }, position: { x: 300, y: 0 } },
  ],
  edges: [{ from: "inp.q", to: "ask.prompt" }],
};

function routes(role: WorkspaceRole) {
  return {
    [`GET ${BASE}`]: { body: { id: "ws-1", name: "Research", role, archived: false } },
    [`GET ${BASE}/flows/f-1`]: {
      body: {
        id: "f-1",
        name: "Answers",
        description: "",
        created_at: "2026-01-01T00:00:00Z",
        updated_at: "2026-01-01T00:00:00Z",
        current_version: "a".repeat(64),
        document: DOC,
      },
    },
    "GET /api/node-types": { body: { ...NODE_TYPES, event_types: {} } },
    "GET /api/orgs/acme/secrets": { body: [{ name: "openai" }] },
    [`GET ${BASE}/secrets`]: { body: [] },
    [`POST ${BASE}/flows/validate`]: {
      body: {
        valid: false,
        issues: [
          { code: "no_output", message: "the flow has no output node", node: null, port: null, severity: "error" },
          { code: "dead_end", message: "node 'ask' does not lead to any output", node: "ask", port: null, severity: "warning" },
        ],
        plan: null,
        ports: {
          inp: { inputs: [], outputs: [{ name: "q", type: "text", required: true, description: "" }] },
        },
      },
    },
  };
}

function renderBuilder() {
  const org = { id: "o-1", name: "Acme", slug: "acme", created_at: "2026-01-01T00:00:00Z", role: "member" as const };
  return render(
    <MemoryRouter initialEntries={["/orgs/acme/workspaces/ws-1/flows/f-1"]}>
      <ToastProvider>
        <AuthProvider initial={ME}>
          <OrgContext.Provider value={{ org, role: "member", reload: () => undefined }}>
            <Routes>
              <Route path="/orgs/:slug/workspaces/:wsId/flows/:flowId" element={<FlowBuilderPage />} />
            </Routes>
          </OrgContext.Provider>
        </AuthProvider>
      </ToastProvider>
    </MemoryRouter>,
  );
}

describe("flow builder", () => {
  it("shows the saved flow and the server's problems on their nodes and in the list", async () => {
    installFakeFetch(routes("editor"));
    renderBuilder();
    expect(await screen.findByRole("heading", { name: /Answers/ })).toBeInTheDocument();
    const problems = await screen.findAllByTestId("problem");
    expect(problems.map((p) => p.textContent)).toEqual([
      " the flow has no output node",
      "ask node 'ask' does not lead to any output",
    ]);
    const ask = document.querySelector('[data-node-id="ask"]') as HTMLElement;
    expect(within(ask).getByTestId("node-issues")).toHaveTextContent("does not lead to any output");
    const handle = within(ask).getByTestId("handle-input-prompt");
    expect(handle).toHaveAttribute("data-port-type", "text");
    expect(handle).toHaveAttribute("title", "prompt: text input (optional) — appended as a user turn");
    // An input node's ports are its fields, as the server resolved them.
    const inp = document.querySelector('[data-node-id="inp"]') as HTMLElement;
    expect(await within(inp).findByTestId("handle-output-q")).toHaveAttribute("data-port-type", "text");
  });

  it("adds a node from the palette with the keyboard, and can undo it", async () => {
    const { calls } = installFakeFetch(routes("editor"));
    renderBuilder();
    const user = userEvent.setup();
    const add = await screen.findByRole("button", { name: "Add Flow output" });
    add.focus();
    await user.keyboard("{Enter}");
    await waitFor(() => expect(document.querySelectorAll('[data-testid="flow-node"]')).toHaveLength(3));
    expect(screen.getByTestId("unsaved")).toBeInTheDocument();
    await waitFor(() => {
      const sent = calls.filter((c) => c.path.endsWith("/flows/validate")).at(-1)?.body as { document: typeof DOC };
      expect(sent.document.nodes.map((n) => n.id)).toEqual(["inp", "ask", "output_1"]);
    });
    await user.click(screen.getByRole("button", { name: "Undo" }));
    await waitFor(() => expect(document.querySelectorAll('[data-testid="flow-node"]')).toHaveLength(2));
    expect(screen.queryByTestId("unsaved")).not.toBeInTheDocument();
  });

  it("shows a viewer the flow read-only: no palette, no save, disabled forms", async () => {
    installFakeFetch(routes("viewer"));
    renderBuilder();
    expect(await screen.findByTestId("read-only")).toBeInTheDocument();
    await waitFor(() => expect(document.querySelectorAll('[data-testid="flow-node"]')).toHaveLength(2));
    expect(screen.queryByTestId("palette")).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Save" })).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Run" })).not.toBeInTheDocument();
    const handle = await within(document.querySelector('[data-node-id="inp"]') as HTMLElement).findByTestId("handle-output-q");
    expect(handle).not.toHaveClass("connectable");
  });
});
