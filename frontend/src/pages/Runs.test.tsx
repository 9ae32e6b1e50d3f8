import { act, render, screen, waitFor, within } from "@testing-library/react";
import type { ReactElement } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import userEvent from "@testing-library/user-event";
import type { RunDetail, Schemas, Workspace } from "../api/client";
import { applyRunEvent, INITIAL_LIVE, type AgUiEvent } from "../lib/runs";
import { ME, installFakeFetch } from "../test/fakeFetch";
import { MemoryRouter, Route, Routes } from "react-router";
import { ToastProvider } from "../components/toast";
import { AuthProvider } from "../lib/auth";
import { OrgContext } from "../lib/org";
import { RunPage, WorkspaceRunsPage } from "./Runs";

/** A stand-in for the browser's EventSource: the test pushes the server's messages. */
class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static instances: FakeEventSource[] = [];
  readonly url: string;
  readyState = FakeEventSource.OPEN;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  onopen: ((event: Event) => void) | null = null;

  constructor(url: string | URL) {
    this.url = String(url);
    FakeEventSource.instances.push(this);
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
  }

  emit(event: AgUiEvent) {
    this.onmessage?.(new MessageEvent("message", { data: JSON.stringify(event) }));
  }
}

/** Like test/render's renderPage, but the page sits at its own route so it gets its params. */
function renderAt(route: string, path: string, element: ReactElement) {
  const org = { id: "o-1", name: "Acme", slug: "acme", created_at: "2026-01-01T00:00:00Z", role: "member" as const };
  return render(
    <MemoryRouter initialEntries={[path]}>
      <ToastProvider>
        <AuthProvider initial={ME}>
          <OrgContext.Provider value={{ org, role: "member", reload: () => undefined }}>
            <Routes>
              <Route path={route} element={element} />
            </Routes>
          </OrgContext.Provider>
        </AuthProvider>
      </ToastProvider>
    </MemoryRouter>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
  FakeEventSource.instances = [];
});

const RUN: RunDetail = {
  id: "11111111-2222-3333-4444-555555555555",
  flow_id: "f-1",
  flow_version: "a".repeat(64),
  status: "queued",
  caller_email: "ada@example.com",
  flow_owner_email: "ada@example.com",
  inputs: {},
  created_at: "2026-01-01T00:00:00Z",
  outputs: null,
  error: null,
  nodes: {},
  recovery_attempts: 0,
  forked_at_node: "",
  forked_from_id: null,
};

const RUN_PATH = `/orgs/acme/workspaces/ws-1/runs/${RUN.id}`;

function renderRunPage() {
  return renderAt("/orgs/:slug/workspaces/:wsId/runs/:runId", RUN_PATH, <RunPage />);
}

describe("run page: the live view", () => {
  it("shows steps, the streamed text as it grows, and the outputs", async () => {
    vi.stubGlobal("EventSource", FakeEventSource);
    installFakeFetch({ [`GET /api/orgs/acme/workspaces/ws-1/runs/${RUN.id}`]: { body: RUN } });
    renderRunPage();

    await screen.findByTestId("run-status");
    await waitFor(() => expect(FakeEventSource.instances).toHaveLength(1));
    const source = FakeEventSource.instances[0]!;
    expect(source.url).toBe(`/api/orgs/acme/workspaces/ws-1/runs/${RUN.id}/stream`);

    const messageId = `${RUN.id}:llm`;
    act(() => {
      source.emit({ type: "RUN_STARTED" });
      source.emit({ type: "STEP_STARTED", stepName: "llm" });
    });
    expect(screen.getByTestId("run-status")).toHaveTextContent("running");
    expect(screen.getByTestId("run-step")).toHaveAttribute("data-state", "running");

    act(() => source.emit({ type: "TEXT_MESSAGE_CONTENT", messageId, delta: "Hello" }));
    expect(screen.getByTestId("run-live-text")).toHaveTextContent(/^Hello$/);
    act(() => source.emit({ type: "TEXT_MESSAGE_CONTENT", messageId, delta: " world" }));
    expect(screen.getByTestId("run-live-text")).toHaveTextContent("Hello world");

    act(() => {
      source.emit({
        type: "CUSTOM",
        name: "LLM_USAGE",
        value: { node: "llm", port: null, model: "claude", input_tokens: 12, output_tokens: 2, cost_usd: 0.0001 },
      });
      source.emit({ type: "STEP_FINISHED", stepName: "llm" });
      source.emit({ type: "RUN_FINISHED", result: { outputs: { answer: "Hello world" } } });
    });

    const step = screen.getByTestId("run-step");
    expect(step).toHaveAttribute("data-state", "done");
    expect(within(step).getByText("done")).toBeInTheDocument();
    expect(within(step).getByText("llm")).toBeInTheDocument();
    expect(screen.getByTestId("run-live-text")).toHaveTextContent("Hello world");
    expect(screen.getByTestId("run-usage-total")).toHaveTextContent("12 input tokens · 2 output tokens");
    expect(await screen.findByTestId("run-outputs")).toHaveTextContent('"answer": "Hello world"');
    expect(screen.getByTestId("run-status")).toHaveTextContent("completed");
    // Closed after the end, so the browser does not reconnect.
    expect(source.readyState).toBe(FakeEventSource.CLOSED);
  });

  it("shows the error of a failed run and marks its node failed", () => {
    let state = INITIAL_LIVE;
    for (const event of [
      { type: "RUN_STARTED" },
      { type: "STEP_STARTED", stepName: "http" },
      { type: "CUSTOM", name: "NODE_FAILED", value: { node: "http", port: null, error: "timeout" } },
      { type: "STEP_FINISHED", stepName: "http" },
      { type: "RUN_ERROR", message: "node http failed" },
    ] satisfies AgUiEvent[]) {
      state = applyRunEvent(state, event);
    }
    expect(state.steps).toEqual([{ node: "http", state: "failed", error: "timeout" }]);
    expect(state.phase).toBe("error");
    expect(state.error).toBe("node http failed");
  });

  it("marks what a node streamed before its worker died as superseded by its next attempt", () => {
    let state = INITIAL_LIVE;
    for (const event of [
      { type: "RUN_STARTED" },
      { type: "STEP_STARTED", stepName: "llm" },
      { type: "TEXT_MESSAGE_START", messageId: "r1:llm" },
      { type: "TEXT_MESSAGE_CONTENT", messageId: "r1:llm", delta: "Hel" },
      { type: "TEXT_MESSAGE_END", messageId: "r1:llm" },
      { type: "CUSTOM", name: "NODE_RESTARTED", value: { node: "llm", port: null, attempt: 2 } },
      { type: "TEXT_MESSAGE_START", messageId: "r1:llm:2" },
      { type: "TEXT_MESSAGE_CONTENT", messageId: "r1:llm:2", delta: "Hello again" },
    ] satisfies AgUiEvent[]) {
      state = applyRunEvent(state, event);
    }
    expect(state.messages).toEqual([
      { id: "r1:llm", text: "Hel", open: false, superseded: true },
      { id: "r1:llm:2", text: "Hello again", open: true },
    ]);
    expect(state.steps).toEqual([{ node: "llm", state: "running" }]);
  });
});

describe("runs page: who may start a run", () => {
  const WS: Workspace = { id: "ws-1", name: "Research", created_at: "2026-01-01T00:00:00Z", archived: false, role: "viewer" };
  const FLOWS = {
    results: [
      {
        id: "f-1",
        name: "Summarise",
        description: "",
        created_at: "2026-01-01T00:00:00Z",
        updated_at: "2026-01-01T00:00:00Z",
        current_version: "b".repeat(64),
      },
    ],
    next: null,
    previous: null,
  };
  const RUNS = { results: [{ ...RUN, status: "completed" }], next: null, previous: null };

  function open(role: Workspace["role"]) {
    installFakeFetch({
      "GET /api/orgs/acme/workspaces/ws-1": { body: { ...WS, role } },
      "GET /api/orgs/acme/workspaces/ws-1/flows": { body: FLOWS },
      "GET /api/orgs/acme/workspaces/ws-1/runs": { body: RUNS },
    });
    renderAt("/orgs/:slug/workspaces/:wsId/runs", "/orgs/acme/workspaces/ws-1/runs", <WorkspaceRunsPage />);
  }

  it("a viewer sees flows and runs but no Run button", async () => {
    open("viewer");
    await screen.findByTestId("flow-row");
    const run = await screen.findByTestId("run-row");
    expect(run).toHaveTextContent("Summarise");
    expect(run).toHaveTextContent("completed");
    expect(screen.queryByRole("button", { name: "Run Summarise" })).toBeNull();
  });

  it("an editor gets the Run button", async () => {
    open("editor");
    expect(await screen.findByRole("button", { name: "Run Summarise" })).toBeEnabled();
  });
});

describe("run page: waiting for approval", () => {
  const REQUESTS_URL = `GET /api/orgs/acme/workspaces/ws-1/runs/${RUN.id}/requests`;
  const ANSWER_URL = `POST /api/orgs/acme/workspaces/ws-1/runs/${RUN.id}/requests/ask/answer`;

  function humanRequest(extra: Partial<Schemas["HumanRequestOut"]> = {}): Schemas["HumanRequestOut"] {
    return {
      run_id: RUN.id,
      node_id: "ask",
      node: "ask",
      kind: "approval",
      tool_call: null,
      flow_id: "f-1",
      flow_name: "Payments",
      org_slug: "acme",
      workspace_id: "ws-1",
      title: "Pay the supplier",
      message: "Pay 120 EUR?",
      data: 120,
      approvers: { role: "editor" },
      status: "pending",
      can_answer: true,
      comment: "",
      answered_by: null,
      answered_at: null,
      created_at: "2026-01-01T00:00:00Z",
      deadline: null,
      ...extra,
    };
  }

  it("lists the request when the live view reports it, answers it, and shows who answered", async () => {
    document.cookie = "csrftoken=t; path=/";
    vi.stubGlobal("EventSource", FakeEventSource);
    let requests: Schemas["HumanRequestOut"][] = [];
    const fake = installFakeFetch({
      [`GET /api/orgs/acme/workspaces/ws-1/runs/${RUN.id}`]: { body: { ...RUN, status: "running" } },
      [REQUESTS_URL]: () => ({ body: requests }),
      [ANSWER_URL]: () => {
        requests = [
          humanRequest({ status: "approved", can_answer: false, answered_by: "ada@example.com", comment: "go" }),
        ];
        return { body: requests[0] };
      },
    });
    renderRunPage();
    await screen.findByTestId("run-status");
    // The live view opens its stream once the run is loaded.
    await waitFor(() => expect(FakeEventSource.instances).toHaveLength(1));
    const source = FakeEventSource.instances[0]!;
    expect(screen.queryByRole("region", { name: "Waiting for approval" })).toBeNull();

    // The node asks: the page fetches the run's requests again.
    requests = [humanRequest()];
    act(() => {
      source.emit({ type: "RUN_STARTED" });
      source.emit({ type: "STEP_STARTED", stepName: "ask" });
      source.emit({ type: "CUSTOM", name: "HITL_REQUESTED", value: { node: "ask", title: "Pay the supplier" } });
    });
    const section = await screen.findByRole("region", { name: "Waiting for approval" });
    const card = await within(section).findByRole("article", { name: "Pay the supplier" });
    expect(within(card).getByText("Pay 120 EUR?")).toBeInTheDocument();

    await userEvent.type(within(card).getByLabelText("Comment"), "go");
    await userEvent.click(within(card).getByRole("button", { name: "Approve" }));
    expect(await within(section).findByTestId("run-requests-status")).toHaveTextContent("Approved “Pay the supplier”");
    const answered = await within(section).findByTestId("run-request");
    expect(answered).toHaveAttribute("data-status", "approved");
    expect(answered).toHaveTextContent("by ada@example.com");
    expect(answered).toHaveTextContent("“go”");
    expect(within(section).queryByRole("button", { name: "Approve" })).toBeNull();
    expect(fake.calls.find((c) => c.method === "POST")?.body).toEqual({ decision: "approve", comment: "go" });

    // The run goes on; the resolution event refreshes the list again.
    const before = fake.calls.filter((c) => c.path.endsWith("/requests")).length;
    act(() => source.emit({ type: "CUSTOM", name: "HITL_RESOLVED", value: { node: "ask", outcome: "approved" } }));
    await vi.waitFor(() => expect(fake.calls.filter((c) => c.path.endsWith("/requests")).length).toBe(before + 1));
  });

  it("shows a pending request without buttons to someone who may not answer it", async () => {
    vi.stubGlobal("EventSource", FakeEventSource);
    installFakeFetch({
      [`GET /api/orgs/acme/workspaces/ws-1/runs/${RUN.id}`]: { body: { ...RUN, status: "running" } },
      [REQUESTS_URL]: { body: [humanRequest({ can_answer: false })] },
    });
    renderRunPage();
    const request = await screen.findByTestId("run-request");
    expect(request).toHaveAttribute("data-status", "pending");
    expect(request).toHaveTextContent("not among the approvers");
    expect(screen.queryByRole("button", { name: "Approve" })).toBeNull();
  });
});
