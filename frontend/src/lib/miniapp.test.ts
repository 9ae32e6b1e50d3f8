import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { installFakeFetch } from "../test/fakeFetch";
import {
  INITIAL_APP_LIVE,
  RateLimitedError,
  applyAppEvent,
  initialValues,
  inputErrorsFromServer,
  keepAppKey,
  openApp,
  rateLimitMessage,
  readEventStream,
  readVisitorToken,
  retryAfterSeconds,
  startAppRun,
  summariseInputs,
  toInputs,
  visitorTokenKey,
  type AppInput,
  type SseMessage,
} from "./miniapp";
import type { AgUiEvent } from "./runs";

function input(name: string, type: string, extra: Partial<AppInput> = {}): AppInput {
  return { name, type, required: true, description: "", default: null, ...extra };
}

beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
});
afterEach(() => vi.unstubAllGlobals());

describe("the form's inputs object", () => {
  const fields = [
    input("question", "text"),
    input("count", "number", { required: false, default: 3 }),
    input("polite", "boolean", { required: false, default: true }),
    input("options", "json", { required: false, default: { tone: "dry" } }),
    input("tags", "list", { required: false }),
  ];

  it("starts from the defaults, written as each control shows them", () => {
    expect(initialValues(fields)).toEqual({
      question: "",
      count: "3",
      polite: true,
      options: '{\n  "tone": "dry"\n}',
      tags: "",
    });
  });

  it("converts each value to its type and leaves empty optional inputs out", () => {
    const values = { ...initialValues(fields), question: "Why?\nReally.", count: " 2.5 ", polite: false };
    expect(toInputs(fields, values)).toEqual({
      inputs: { question: "Why?\nReally.", count: 2.5, polite: false, options: { tone: "dry" } },
      errors: {},
    });
    const listed = toInputs(fields, { ...values, tags: '["a", "b"]' });
    expect(listed.inputs.tags).toEqual(["a", "b"]);
  });

  it("names each bad input: required, not a number, not JSON, not a list", () => {
    const { inputs, errors } = toInputs(fields, {
      question: "",
      count: "three",
      polite: true,
      options: "{tone: dry}",
      tags: '{"a": 1}',
    });
    expect(errors.question).toBe("Question is required.");
    expect(errors.count).toBe("Enter a number, like 42 or 3.5.");
    expect(errors.options).toMatch(/^This is not valid JSON \(.+\)\. Example: \{"key": "value"\}$/);
    expect(errors.tags).toBe('Enter a JSON list, like ["first", "second"].');
    expect(inputs).toEqual({ polite: true });
  });

  it("puts the server's messages on the inputs they name, and keeps the rest for the alert", () => {
    expect(
      inputErrorsFromServer(
        {
          "nodes.inp.question": "input 'question' (text) is required",
          "inputs.extra": "input 'extra' is not an input of this flow",
          "nodes.http": "refused by the workspace's rules",
        },
        ["question", "count"],
      ),
    ).toEqual({
      byInput: { question: "input 'question' (text) is required" },
      other: ["input 'extra' is not an input of this flow", "refused by the workspace's rules"],
    });
  });

  it("summarises a past run's inputs in one short line", () => {
    expect(summariseInputs({ q: "hello", n: 2, tags: ["a"] })).toBe('q: hello · n: 2 · tags: ["a"]');
    expect(summariseInputs({})).toBe("no inputs");
    expect(summariseInputs({ q: "x".repeat(200) }, 20)).toHaveLength(20);
  });
});

describe("the rate limit", () => {
  const detail = "You have started 2 runs of this app in this minute, its limit per visitor: try again in 42 s.";

  it("counts the server's wait down in its own sentence, and is gone when the wait is over", () => {
    expect(rateLimitMessage(detail, 42)).toBe(detail);
    expect(rateLimitMessage(detail, 7)).toBe(
      "You have started 2 runs of this app in this minute, its limit per visitor: try again in 7 s.",
    );
    expect(rateLimitMessage("Slow down.", 3)).toBe("Slow down. Try again in 3 s.");
    expect(rateLimitMessage(detail, 0)).toBeNull();
  });

  it("reads the wait from Retry-After (seconds or a date), else from the detail", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterSeconds("17", "", now)).toBe(17);
    expect(retryAfterSeconds("Thu, 01 Jan 2026 00:00:30 GMT", "", now)).toBe(30);
    expect(retryAfterSeconds(null, detail, now)).toBe(42);
    expect(retryAfterSeconds(null, "busy", now)).toBe(60);
  });

  it("a 429 answer becomes a RateLimitedError with the header's wait", async () => {
    document.cookie = "csrftoken=t; path=/";
    const fetch = vi.fn(async (request: Request) => {
      expect(request.method).toBe("POST");
      return new Response(JSON.stringify({ detail, code: "rate_limited" }), {
        status: 429,
        headers: { "Content-Type": "application/json", "Retry-After": "12" },
      });
    });
    vi.stubGlobal("fetch", fetch);
    const error = await startAppRun("acme", "ask", { q: "hi" }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfter).toBe(12);
    expect((error as RateLimitedError).detail).toBe(detail);
  });
});

describe("who the visitor is", () => {
  const APP = {
    org_slug: "acme",
    org_name: "Acme",
    slug: "ask",
    title: "Ask",
    description: "",
    access: "public",
    inputs: [],
    visitor_rate_per_minute: 10,
    visitor: { kind: "anonymous", email: null },
  };

  it("keeps the visitor token the app issues, per app, and sends it on later calls", async () => {
    document.cookie = "csrftoken=t; path=/";
    const fake = installFakeFetch({
      "GET /api/apps/acme/ask": ({ headers }) => ({
        body: { ...APP, visitor_token: headers.get("X-App-Visitor") ? null : "tok-1" },
      }),
      "POST /api/apps/acme/ask/runs": { status: 201, body: { id: "r-1", status: "queued", inputs: {}, created_at: "" } },
    });
    await openApp("acme", "ask");
    expect(localStorage.getItem(visitorTokenKey("acme", "ask"))).toBe("tok-1");
    expect(readVisitorToken("acme", "ask")).toBe("tok-1");
    expect(readVisitorToken("acme", "other")).toBeNull();

    // Opened again: the kept token is sent, and no new one replaces it.
    await openApp("acme", "ask");
    expect(fake.calls[1]!.headers.get("X-App-Visitor")).toBe("tok-1");
    expect(readVisitorToken("acme", "ask")).toBe("tok-1");

    await startAppRun("acme", "ask", {});
    const post = fake.calls.find((c) => c.method === "POST")!;
    expect(post.headers.get("X-App-Visitor")).toBe("tok-1");
    expect(post.headers.get("X-CSRFToken")).toBe("t");
  });

  it("sends an app key, kept for the tab only, instead of the token", async () => {
    localStorage.setItem(visitorTokenKey("acme", "ask"), "tok-1");
    keepAppKey("acme", "ask", "ffa_secret");
    expect(sessionStorage.getItem("fireflow.app-key.acme/ask")).toBe("ffa_secret");
    const fake = installFakeFetch({ "GET /api/apps/acme/ask": { body: { ...APP, visitor: { kind: "key", email: null } } } });
    await openApp("acme", "ask");
    expect(fake.calls[0]!.headers.get("Authorization")).toBe("Bearer ffa_secret");
    expect(fake.calls[0]!.headers.get("X-App-Visitor")).toBeNull();
  });
});

describe("the run, live", () => {
  it("turns a human step's card from waiting to answered", () => {
    let state = INITIAL_APP_LIVE;
    for (const event of [
      { type: "RUN_STARTED" },
      { type: "CUSTOM", name: "HITL_REQUESTED", value: { node: "ask", title: "Check the refund", message: "Refund 40 EUR?" } },
    ] satisfies AgUiEvent[]) {
      state = applyAppEvent(state, event);
    }
    expect(state.humans).toEqual([{ node: "ask", title: "Check the refund", message: "Refund 40 EUR?", state: "waiting" }]);
    state = applyAppEvent(state, { type: "CUSTOM", name: "HITL_RESOLVED", value: { node: "ask", outcome: "approved" } });
    expect(state.humans[0]).toMatchObject({ state: "answered", outcome: "approved" });
    expect(state.live.requestEvents).toBe(2);
  });

  it("reads Server-Sent Events split anywhere across chunks", async () => {
    const chunks = ['id: 1\ndata: {"type":"RUN', '_STARTED"}\n\n: keep-alive\n\nid: 2\r\ndata: {"a":1}\r\n', "\r\ndata: last"];
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
        controller.close();
      },
    });
    const messages: SseMessage[] = [];
    await readEventStream(body, (m) => messages.push(m));
    expect(messages).toEqual([
      { id: "1", data: '{"type":"RUN_STARTED"}' },
      { id: "2", data: '{"a":1}' },
      { id: null, data: "last" },
    ]);
  });
});
