import { describe, expect, it } from "vitest";
import { INITIAL_LIVE, applyRunEvent } from "../lib/runs";
import type { FlowDocument } from "./document";
import { nodeRunDetail, overlayStates, parseRunInput, statesFromEvents, streamedText, type RunEvent } from "./runview";

const DOC: FlowDocument = {
  schema: 1,
  nodes: [
    { id: "inp", type: "input", config: { fields: [{ name: "q", type: "text" }] } },
    { id: "ask", type: "llm_chat", config: {} },
    { id: "out", type: "output", config: { name: "answer" } },
  ],
  edges: [
    { from: "inp.q", to: "ask.prompt" },
    { from: "ask.text", to: "out.value" },
  ],
};

let seq = 0;
function event(type: string, node: string | null, payload: Record<string, unknown> = {}, port: string | null = null, at = 0): RunEvent {
  return { seq: ++seq, type, node, port, payload, created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, at)).toISOString() };
}

const EVENTS: RunEvent[] = [
  event("FLOW_STARTED", null, { inputs: { q: "hi" } }),
  event("NODE_STARTED", "inp", {}, null, 0),
  event("PORT_VALUE_CHANGED", "inp", { value: "hi" }, "q", 0),
  event("NODE_COMPLETED", "inp", {}, null, 0),
  event("NODE_STARTED", "ask", {}, null, 1),
  event("STREAM_CHUNK", "ask", { text: "Echo" }, null, 2),
  event("STREAM_CHUNK", "ask", { text: ": hi" }, null, 2),
  event("LLM_USAGE", "ask", { cost_usd: 0.001 }, null, 3),
  event("PORT_VALUE_CHANGED", "ask", { value: "Echo: hi" }, "text", 3),
  event("NODE_COMPLETED", "ask", {}, null, 4),
];

describe("a run over the canvas", () => {
  it("replays node states from the stored events", () => {
    expect(statesFromEvents(EVENTS)).toEqual({ inp: "done", ask: "done" });
    expect(statesFromEvents([event("NODE_STARTED", "h"), event("HITL_REQUESTED", "h")])).toEqual({ h: "paused" });
    expect(statesFromEvents([event("NODE_FAILED", "x"), event("NODE_COMPLETED", "x")])).toEqual({ x: "failed" });
  });

  it("overlays the live steps, a pending request, and waiting for the rest", () => {
    let live = applyRunEvent(INITIAL_LIVE, { type: "STEP_STARTED", stepName: "inp" });
    live = applyRunEvent(live, { type: "STEP_FINISHED", stepName: "inp" });
    live = applyRunEvent(live, { type: "STEP_STARTED", stepName: "ask" });
    expect(overlayStates(["inp", "ask", "out"], live, {}, new Set())).toEqual({ inp: "done", ask: "running", out: "waiting" });
    expect(overlayStates(["ask"], live, {}, new Set(["ask"]))).toEqual({ ask: "paused" });
    expect(overlayStates(["ask", "out"], live, { ask: "done", out: "skipped" }, new Set())).toEqual({ ask: "done", out: "skipped" });
  });

  it("shows the values through a node's ports, its events and timing", () => {
    const detail = nodeRunDetail("ask", DOC, EVENTS);
    expect(detail.inputs).toEqual([{ port: "prompt", value: "hi", from: "inp.q" }]);
    expect(detail.outputs).toEqual([{ port: "text", value: "Echo: hi" }]);
    expect(detail.events.map((e) => e.type)).toEqual(["NODE_STARTED", "LLM_USAGE", "NODE_COMPLETED"]);
    expect(detail.streamChunks).toBe(2);
    expect(detail.durationMs).toBe(3000);
  });

  it("finds the text a node streams", () => {
    let live = applyRunEvent(INITIAL_LIVE, { type: "TEXT_MESSAGE_START", messageId: "r1:ask" });
    live = applyRunEvent(live, { type: "TEXT_MESSAGE_CONTENT", messageId: "r1:ask", delta: "Echo" });
    expect(streamedText(live, "ask")).toEqual({ text: "Echo", open: true });
    expect(streamedText(live, "out")).toBeNull();
  });

  it("converts run inputs to their field's type", () => {
    expect(parseRunInput("number", "4.5")).toEqual({ value: 4.5 });
    expect(parseRunInput("number", "x").error).toBe("Enter a number.");
    expect(parseRunInput("json", '{"a": 1}')).toEqual({ value: { a: 1 } });
    expect(parseRunInput("text", "hi")).toEqual({ value: "hi" });
  });
});
