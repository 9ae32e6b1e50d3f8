import { act, render, screen, within } from "@testing-library/react";
import type { ReactElement } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RunDetail, Workspace } from "../api/client";
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
    expect(FakeEventSource.instances).toHaveLength(1);
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
