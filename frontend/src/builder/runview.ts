/**
 * A run drawn over the canvas: each node's state, the values through its ports, its events
 * with timings. Built from the run's stored events (`GET .../runs/{id}/events`, for replays
 * and details) and the live stream (lib/runs.ts) while it runs.
 */
import { messageNode, type LiveRun } from "../lib/runs";
import { parseRef, type FlowDocument } from "./document";

export type NodeRunState = "waiting" | "running" | "paused" | "done" | "failed" | "skipped";

export const RUN_STATE_LABEL: Record<NodeRunState, string> = {
  waiting: "waiting",
  running: "running",
  paused: "waiting for a person",
  done: "done",
  failed: "failed",
  skipped: "skipped",
};

export interface RunEvent {
  seq: number;
  type: string;
  node: string | null;
  port: string | null;
  payload: Record<string, unknown>;
  created_at: string;
}

const EVENT_STATE: Record<string, NodeRunState> = {
  NODE_STARTED: "running",
  NODE_RESTARTED: "running",
  HITL_RESOLVED: "running",
  HITL_REQUESTED: "paused",
  NODE_COMPLETED: "done",
  NODE_FAILED: "failed",
  NODE_SKIPPED: "skipped",
};

/** Each node's last state according to the run's events. */
export function statesFromEvents(events: readonly RunEvent[]): Record<string, NodeRunState> {
  const states: Record<string, NodeRunState> = {};
  for (const event of events) {
    const state = EVENT_STATE[event.type];
    if (!event.node || !state) continue;
    if (states[event.node] === "failed" && state === "done") continue; // a failed node may still report its end
    states[event.node] = state;
  }
  return states;
}

const FINAL: readonly NodeRunState[] = ["done", "failed", "skipped"];

/**
 * What to draw on each node: the live stream's step, unless the stored events already know the
 * node's end; "waiting for a person" while it has a pending request; "waiting" otherwise.
 */
export function overlayStates(
  nodeIds: readonly string[],
  live: LiveRun,
  fromEvents: Record<string, NodeRunState>,
  paused: ReadonlySet<string>,
): Record<string, NodeRunState> {
  const states: Record<string, NodeRunState> = {};
  for (const id of nodeIds) {
    const step = live.steps.find((s) => s.node === id);
    const stored = fromEvents[id];
    let state: NodeRunState = step?.state ?? stored ?? "waiting";
    if (stored && FINAL.includes(stored) && !FINAL.includes(state)) state = stored;
    if (state === "running" && paused.has(id)) state = "paused";
    states[id] = state;
  }
  return states;
}

export interface PortValue {
  port: string;
  value: unknown;
  /** For an input: the output it came from. */
  from?: string;
}

export interface NodeRunDetail {
  inputs: PortValue[];
  outputs: PortValue[];
  events: RunEvent[];
  streamChunks: number;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  error: string | null;
}

/** The values that went in and out of a node, its events (stream chunks counted) and its timing. */
export function nodeRunDetail(nodeId: string, document: FlowDocument, events: readonly RunEvent[]): NodeRunDetail {
  const lastValue = new Map<string, unknown>();
  for (const event of events) {
    if (event.type === "PORT_VALUE_CHANGED" && event.node && event.port) {
      lastValue.set(`${event.node}.${event.port}`, event.payload.value);
    }
  }
  const inputs: PortValue[] = document.edges
    .filter((edge) => parseRef(edge.to).node === nodeId && lastValue.has(edge.from))
    .map((edge) => ({ port: parseRef(edge.to).port, value: lastValue.get(edge.from), from: edge.from }));
  const own = events.filter((e) => e.node === nodeId);
  const outputs: PortValue[] = [];
  for (const [ref, value] of lastValue) {
    const { node, port } = parseRef(ref);
    if (node === nodeId) outputs.push({ port, value });
  }
  const started = own.find((e) => e.type === "NODE_STARTED");
  const ended = [...own].reverse().find((e) => e.type === "NODE_COMPLETED" || e.type === "NODE_FAILED");
  const failed = [...own].reverse().find((e) => e.type === "NODE_FAILED");
  const durationMs =
    started && ended ? Math.max(0, new Date(ended.created_at).getTime() - new Date(started.created_at).getTime()) : null;
  return {
    inputs,
    outputs,
    events: own.filter((e) => e.type !== "STREAM_CHUNK" && e.type !== "PORT_VALUE_CHANGED"),
    streamChunks: own.filter((e) => e.type === "STREAM_CHUNK").length,
    startedAt: started?.created_at ?? null,
    finishedAt: ended?.created_at ?? null,
    durationMs,
    error: failed && typeof failed.payload.error === "string" ? failed.payload.error : null,
  };
}

/** The text a node is streaming (or streamed) in this run: its latest attempt's message. */
export function streamedText(live: LiveRun, nodeId: string): { text: string; open: boolean } | null {
  const mine = live.messages.filter((m) => messageNode(m.id) === nodeId && !m.superseded);
  const last = mine[mine.length - 1];
  return last ? { text: last.text, open: last.open } : null;
}

/** The run's input fields: the `fields` of its input nodes. */
export function flowInputs(document: FlowDocument): { name: string; type: string; required: boolean; description: string }[] {
  const fields: { name: string; type: string; required: boolean; description: string }[] = [];
  for (const node of document.nodes) {
    if (node.type !== "input" || !Array.isArray(node.config.fields)) continue;
    for (const raw of node.config.fields as Record<string, unknown>[]) {
      if (typeof raw.name !== "string" || fields.some((f) => f.name === raw.name)) continue;
      fields.push({
        name: raw.name,
        type: typeof raw.type === "string" ? raw.type : "any",
        required: raw.required !== false && !("default" in raw),
        description: typeof raw.description === "string" ? raw.description : "",
      });
    }
  }
  return fields;
}

/** A run input as typed in its field, converted to the field's type (JSON for structured ones). */
export function parseRunInput(type: string, text: string): { value?: unknown; error?: string } {
  switch (type) {
    case "text":
      return { value: text };
    case "number": {
      const n = Number(text);
      return text.trim() !== "" && Number.isFinite(n) ? { value: n } : { error: "Enter a number." };
    }
    case "boolean":
      return { value: text === "true" };
    default:
      try {
        return { value: JSON.parse(text) };
      } catch {
        if (type === "any") return { value: text };
        return { error: "Enter JSON, e.g. {\"key\": \"value\"} or [1, 2]." };
      }
  }
}
