import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ToastProvider } from "../components/toast";
import { AuthProvider } from "../lib/auth";
import type { AppInput, AppRun, PublicApp } from "../lib/miniapp";
import type { AgUiEvent } from "../lib/runs";
import { installFakeFetch, type Recorded, type Reply } from "../test/fakeFetch";
import { MiniAppPage } from "./MiniApp";

/** A run's live stream the test writes to, as the server would. */
class FakeStream {
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  private nextId = 1;
  readonly body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      this.controller = controller;
    },
  });
  headers: Headers | null = null;

  emit(event: AgUiEvent) {
    this.controller?.enqueue(new TextEncoder().encode(`id: ${this.nextId++}\ndata: ${JSON.stringify(event)}\n\n`));
  }
}

type Routes = Record<string, Reply | ((request: Recorded) => Reply | Promise<Reply>)>;

/** The fake fetch of test/fakeFetch for JSON, plus one FakeStream per run for `.../stream`. */
function installAppFetch(routes: Routes) {
  const fake = installFakeFetch(routes);
  const streams = new Map<string, FakeStream>();
  const json = fake.fake;
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input), window.location.origin);
      const match = /\/runs\/([^/]+)\/stream$/.exec(url.pathname);
      if (!match) return json(input, init);
      const stream = streams.get(match[1]!) ?? new FakeStream();
      streams.set(match[1]!, stream);
      stream.headers = new Headers(init?.headers);
      return new Response(stream.body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
    }),
  );
  return { ...fake, streams };
}

function field(name: string, type: string, extra: Partial<AppInput> = {}): AppInput {
  return { name, type, required: false, description: "", default: null, ...extra };
}

const APP: PublicApp = {
  org_slug: "acme",
  org_name: "Acme Research",
  slug: "ask",
  title: "Ask the archive",
  description: "Answers questions about our archive.",
  access: "public",
  inputs: [
    field("question", "text", { required: true, description: "What do you want to know?" }),
    field("temperature", "number", { default: 0.2 }),
    field("cite_sources", "boolean", { default: true }),
    field("filters", "json"),
  ],
  visitor_rate_per_minute: 2,
  visitor: { kind: "anonymous", email: null },
  visitor_token: "tok-1",
};

const RUN_ID = "11111111-2222-3333-4444-555555555555";
const RUN: AppRun = { id: RUN_ID, status: "queued", inputs: { question: "Why?" }, created_at: "2026-01-01T00:00:00Z" };
const PAGE = (results: AppRun[]) => ({ body: { results, next: null, previous: null } });

function open(path = "/apps/acme/ask") {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <ToastProvider>
        <AuthProvider initial={null}>
          <Routes>
            <Route path="/apps/:org/:slug" element={<MiniAppPage />} />
          </Routes>
        </AuthProvider>
      </ToastProvider>
    </MemoryRouter>,
  );
}

beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
  document.cookie = "csrftoken=t; path=/";
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe("a published app's page", () => {
  it("builds the form from the inputs, checks JSON before sending, and streams the answer in", async () => {
    let runs: AppRun[] = [];
    const fake = installAppFetch({
      "GET /api/apps/acme/ask": { body: APP },
      "GET /api/apps/acme/ask/runs": () => PAGE(runs),
      "POST /api/apps/acme/ask/runs": () => {
        runs = [RUN];
        return { status: 201, body: RUN };
      },
      [`GET /api/apps/acme/ask/runs/${RUN_ID}`]: { body: { ...RUN, outputs: null, error: null } },
    });
    open();

    expect(await screen.findByRole("heading", { name: "Ask the archive" })).toBeInTheDocument();
    expect(screen.getByText("Answers questions about our archive.")).toBeInTheDocument();
    expect(screen.getByTestId("app-org")).toHaveTextContent("Acme Research");
    expect(screen.getByRole("link", { name: /FireFlow/ })).toBeInTheDocument();
    expect(await screen.findByText("No runs yet")).toBeInTheDocument();

    const question = screen.getByLabelText(/^Question/);
    expect(question).toHaveAttribute("aria-required", "true");
    expect(question).toHaveAccessibleDescription("What do you want to know?");
    expect(screen.getByLabelText("Temperature")).toHaveValue(0.2);
    expect(screen.getByLabelText("Cite sources")).toBeChecked();

    // Not JSON: said on the field, nothing sent.
    await userEvent.type(question, "Why is the sky blue?");
    await userEvent.type(screen.getByLabelText(/^Filters/), "{{year: 1990}");
    await userEvent.click(screen.getByRole("button", { name: "Run" }));
    const filters = screen.getByLabelText(/^Filters/);
    expect(filters).toHaveAttribute("aria-invalid", "true");
    expect(filters).toHaveAccessibleDescription(/This is not valid JSON/);
    expect(fake.calls.some((c) => c.method === "POST")).toBe(false);

    await userEvent.clear(filters);
    await userEvent.type(filters, '{{"year": 1990}');
    await userEvent.click(screen.getByLabelText("Cite sources"));
    await userEvent.click(screen.getByRole("button", { name: "Run" }));
    await waitFor(() => expect(fake.calls.some((c) => c.method === "POST")).toBe(true));
    const post = fake.calls.find((c) => c.method === "POST")!;
    expect(post.body).toEqual({
      inputs: { question: "Why is the sky blue?", temperature: 0.2, cite_sources: false, filters: { year: 1990 } },
    });
    expect(post.headers.get("X-App-Visitor")).toBe("tok-1");

    // The answer streams in.
    await waitFor(() => expect(fake.streams.get(RUN_ID)?.headers).not.toBeNull());
    const stream = fake.streams.get(RUN_ID)!;
    expect(stream.headers!.get("X-App-Visitor")).toBe("tok-1");
    const messageId = `${RUN_ID}:llm`;
    act(() => {
      stream.emit({ type: "RUN_STARTED" });
      stream.emit({ type: "TEXT_MESSAGE_START", messageId });
      stream.emit({ type: "TEXT_MESSAGE_CONTENT", messageId, delta: "Rayleigh" });
    });
    const answer = screen.getByTestId("app-answer");
    expect(answer).toHaveAttribute("aria-live", "polite");
    await waitFor(() => expect(answer).toHaveTextContent(/^Rayleigh$/));
    expect(screen.getByTestId("app-run-status")).toHaveAttribute("data-status", "running");
    act(() => stream.emit({ type: "TEXT_MESSAGE_CONTENT", messageId, delta: " scattering." }));
    await waitFor(() => expect(answer).toHaveTextContent("Rayleigh scattering."));

    act(() => {
      stream.emit({ type: "TEXT_MESSAGE_END", messageId });
      stream.emit({ type: "RUN_FINISHED", result: { outputs: { answer: "Rayleigh scattering.", sources: [{ page: 4 }] } } });
    });
    const outputs = await screen.findByTestId("app-outputs");
    expect(within(outputs).getByText("Rayleigh scattering.")).toHaveClass("ma-output-text");
    expect(outputs).toHaveTextContent('"page": 4');
    expect(screen.getByTestId("app-run-status")).toHaveAttribute("data-status", "completed");

    // The run is among the visitor's runs.
    const row = await screen.findByTestId("app-run-row");
    expect(row).toHaveTextContent("question: Why?");
  });

  it("shows the rate limit and holds the Run button until the wait is over", async () => {
    const detail = "You have started 2 runs of this app in this minute, its limit per visitor: try again in 3 s.";
    let now = Date.parse("2026-01-01T00:00:00Z");
    vi.spyOn(Date, "now").mockImplementation(() => now);
    const fake = installAppFetch({
      "GET /api/apps/acme/ask": { body: { ...APP, inputs: [field("question", "text", { required: true })] } },
      "GET /api/apps/acme/ask/runs": PAGE([]),
    });
    // 429 with its Retry-After header (the JSON fake sends no headers).
    const json = fake.fake;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
        if (input instanceof Request && input.method === "POST") {
          return new Response(JSON.stringify({ detail, code: "rate_limited" }), {
            status: 429,
            headers: { "Content-Type": "application/json", "Retry-After": "3" },
          });
        }
        return json(input, init);
      }),
    );
    open();
    await userEvent.type(await screen.findByLabelText(/^Question/), "again");
    await userEvent.click(screen.getByRole("button", { name: "Run" }));

    const alert = await screen.findByTestId("app-rate-limit");
    expect(alert).toHaveAttribute("role", "alert");
    expect(alert).toHaveTextContent(detail);
    const button = screen.getByTestId("app-run-button");
    expect(button).toBeDisabled();
    expect(button).toHaveTextContent("Run (wait 3 s)");

    now += 1000;
    await waitFor(() => expect(alert).toHaveTextContent("try again in 2 s."));
    expect(button).toHaveTextContent("Run (wait 2 s)");
    now += 2000;
    await waitFor(() => expect(screen.queryByTestId("app-rate-limit")).toBeNull());
    expect(button).toBeEnabled();
    expect(button).toHaveTextContent(/^Run$/);
  });

  it("puts the server's complaints on the inputs they name", async () => {
    installAppFetch({
      "GET /api/apps/acme/ask": { body: { ...APP, inputs: [field("question", "text")] } },
      "GET /api/apps/acme/ask/runs": PAGE([]),
      "POST /api/apps/acme/ask/runs": {
        status: 422,
        body: {
          detail: "The run's inputs do not fit the flow",
          code: "invalid_inputs",
          fields: { "nodes.inp.question": "input 'question' (text) is required" },
        },
      },
    });
    open();
    await userEvent.click(await screen.findByRole("button", { name: "Run" }));
    const question = screen.getByLabelText(/^Question/);
    await waitFor(() => expect(question).toHaveAttribute("aria-invalid", "true"));
    expect(question).toHaveAccessibleDescription("input 'question' (text) is required");
    expect(screen.getByTestId("app-form-error")).toHaveTextContent("Please correct the highlighted fields.");
  });

  it("shows a past run again, with its human steps and outputs", async () => {
    const past: AppRun = { ...RUN, status: "completed" };
    const fake = installAppFetch({
      "GET /api/apps/acme/ask": { body: APP },
      "GET /api/apps/acme/ask/runs": PAGE([past]),
      [`GET /api/apps/acme/ask/runs/${RUN_ID}`]: {
        body: { ...past, outputs: { answer: "Approved and done." }, error: null },
      },
    });
    open();
    await userEvent.click(await screen.findByRole("button", { name: /Show run of/ }));
    await waitFor(() => expect(fake.streams.get(RUN_ID)).toBeDefined());
    const stream = fake.streams.get(RUN_ID)!;
    act(() => {
      stream.emit({ type: "RUN_STARTED" });
      stream.emit({
        type: "CUSTOM",
        name: "HITL_REQUESTED",
        value: { node: "check", title: "Check the answer", message: "Is this right?" },
      });
    });
    const card = await screen.findByTestId("app-human-step");
    expect(card).toHaveAttribute("data-state", "waiting");
    expect(card).toHaveTextContent("Waiting for a person: Check the answer");
    expect(card).toHaveTextContent("Is this right?");
    expect(within(card).queryByRole("button")).toBeNull();
    act(() => {
      stream.emit({ type: "CUSTOM", name: "HITL_RESOLVED", value: { node: "check", outcome: "approved" } });
      stream.emit({ type: "RUN_FINISHED", result: { outputs: { answer: "Approved and done." } } });
    });
    await waitFor(() => expect(card).toHaveAttribute("data-state", "answered"));
    expect(card).toHaveTextContent("Answered: Check the answer");
    expect(await screen.findByTestId("app-outputs")).toHaveTextContent("Approved and done.");
  });

  it("says plainly when there is no app at the address", async () => {
    installAppFetch({
      "GET /api/apps/acme/gone": {
        status: 404,
        body: { detail: "No app at /apps/acme/gone: the address is wrong or the app is not published.", code: "app_not_found" },
      },
    });
    open("/apps/acme/gone");
    expect(await screen.findByRole("heading", { name: "No app here" })).toBeInTheDocument();
    expect(screen.getByTestId("app-not-found")).toHaveTextContent("not published");
  });

  it("asks a visitor of a members-only app to sign in and come back", async () => {
    installAppFetch({
      "GET /api/apps/acme/inside": {
        status: 401,
        body: { detail: "This app is for members of Acme: sign in to use it.", code: "sign_in_required" },
      },
    });
    open("/apps/acme/inside?embed=1");
    expect(await screen.findByRole("heading", { name: "Sign in to use this app" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Sign in" })).toHaveAttribute(
      "href",
      `/login?next=${encodeURIComponent("/apps/acme/inside?embed=1")}`,
    );
  });

  it("takes an app key for a key app, keeps it for the tab and sends it", async () => {
    const fake = installAppFetch({
      "GET /api/apps/acme/partners": ({ headers }) =>
        headers.get("Authorization") === "Bearer ffa_partner"
          ? { body: { ...APP, slug: "partners", access: "key", visitor: { kind: "key", email: null }, visitor_token: null } }
          : { status: 401, body: { detail: "This app is used with an app key.", code: "app_key_required" } },
      "GET /api/apps/acme/partners/runs": PAGE([]),
    });
    open("/apps/acme/partners");
    const key = await screen.findByLabelText("App key");
    await userEvent.type(key, "not-a-key");
    await userEvent.click(screen.getByRole("button", { name: "Open the app" }));
    expect(screen.getByRole("alert")).toHaveTextContent("An app key starts with ffa_");

    await userEvent.clear(key);
    await userEvent.type(key, "ffa_partner");
    await userEvent.click(screen.getByRole("button", { name: "Open the app" }));
    expect(await screen.findByText("Using an app key.", { exact: false })).toBeInTheDocument();
    expect(sessionStorage.getItem("fireflow.app-key.acme/partners")).toBe("ffa_partner");
    await waitFor(() => expect(fake.calls.some((c) => c.path.endsWith("/partners/runs"))).toBe(true));
    expect(fake.calls.find((c) => c.path.endsWith("/partners/runs"))!.headers.get("Authorization")).toBe("Bearer ffa_partner");
    expect(localStorage.length).toBe(0);
  });

  it("embedded, shows the app without the page's header links", async () => {
    installAppFetch({ "GET /api/apps/acme/ask": { body: APP }, "GET /api/apps/acme/ask/runs": PAGE([]) });
    open("/apps/acme/ask?embed=1");
    expect(await screen.findByRole("heading", { name: "Ask the archive" })).toBeInTheDocument();
    expect(screen.getByTestId("miniapp")).toHaveClass("ma-embed");
    expect(screen.queryByRole("link")).toBeNull();
  });
});
