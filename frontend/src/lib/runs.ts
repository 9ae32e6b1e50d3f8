/**
 * A run, live: the AG-UI events of `GET .../runs/{run_id}/stream` (Server-Sent Events) folded
 * into what the run page shows — steps, streamed text, usage, and the outcome.
 */
import { useEffect, useReducer } from "react";

export type RunStatus = "queued" | "running" | "completed" | "failed" | "cancelled";

export const TERMINAL: readonly string[] = ["completed", "failed", "cancelled"];

export type StepState = "running" | "done" | "failed";

export interface LiveStep {
  node: string;
  state: StepState;
  error?: string;
}

export interface LiveMessage {
  id: string;
  text: string;
  open: boolean;
  /** The node ran again after its worker stopped: this text was replaced by a later message. */
  superseded?: boolean;
}

/** The node a message id belongs to: ids are `<run>:<node>` or `<run>:<node>:<attempt>`. */
export function messageNode(id: string): string {
  return id.split(":")[1] ?? "";
}

export interface LiveUsage {
  node: string;
  model?: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export interface LiveRun {
  /** "connecting" until the first event; then the run's own state. */
  phase: "connecting" | "running" | "finished" | "error";
  steps: LiveStep[];
  messages: LiveMessage[];
  usage: LiveUsage[];
  outputs: Record<string, unknown> | null;
  error: string | null;
  /** How many approval events (HITL_REQUESTED, HITL_ESCALATED, HITL_RESOLVED) arrived: a change means the run's requests changed. */
  requestEvents: number;
  /** The stream itself failed (refused, or the connection gave up). */
  connectionError: string | null;
}

export const INITIAL_LIVE: LiveRun = {
  phase: "connecting",
  steps: [],
  messages: [],
  usage: [],
  outputs: null,
  error: null,
  requestEvents: 0,
  connectionError: null,
};

/** One AG-UI event as sent (camelCase fields). */
export interface AgUiEvent {
  type: string;
  stepName?: string;
  messageId?: string;
  delta?: string;
  name?: string;
  value?: unknown;
  result?: unknown;
  message?: string;
}

function num(value: unknown): number {
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isFinite(n) ? n : 0;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function setStep(steps: LiveStep[], node: string, state: StepState, error?: string): LiveStep[] {
  const found = steps.some((s) => s.node === node);
  if (!found) return [...steps, { node, state, error }];
  return steps.map((s) => (s.node === node ? { ...s, state, error: error ?? s.error } : s));
}

function setMessage(messages: LiveMessage[], id: string, update: (m: LiveMessage) => LiveMessage): LiveMessage[] {
  const found = messages.some((m) => m.id === id);
  const all = found ? messages : [...messages, { id, text: "", open: true }];
  return all.map((m) => (m.id === id ? update(m) : m));
}

/** Fold one event into the live view (pure, for the reducer and for tests). */
export function applyRunEvent(state: LiveRun, event: AgUiEvent): LiveRun {
  switch (event.type) {
    case "RUN_STARTED":
      return { ...state, phase: "running" };
    case "STEP_STARTED":
      return { ...state, phase: "running", steps: setStep(state.steps, event.stepName ?? "", "running") };
    case "STEP_FINISHED": {
      const current = state.steps.find((s) => s.node === event.stepName);
      // A failed node may still report its end; keep it failed.
      if (current?.state === "failed") return state;
      return { ...state, steps: setStep(state.steps, event.stepName ?? "", "done") };
    }
    case "TEXT_MESSAGE_START":
      return { ...state, messages: setMessage(state.messages, event.messageId ?? "", (m) => ({ ...m, open: true })) };
    case "TEXT_MESSAGE_CONTENT":
      return {
        ...state,
        messages: setMessage(state.messages, event.messageId ?? "", (m) => ({ ...m, text: m.text + (event.delta ?? "") })),
      };
    case "TEXT_MESSAGE_END":
      return { ...state, messages: setMessage(state.messages, event.messageId ?? "", (m) => ({ ...m, open: false })) };
    case "CUSTOM": {
      const value = record(event.value);
      const node = typeof value.node === "string" ? value.node : "";
      if (event.name === "NODE_FAILED") {
        const error = typeof value.error === "string" ? value.error : undefined;
        return { ...state, steps: setStep(state.steps, node, "failed", error) };
      }
      if (event.name === "NODE_RESTARTED") {
        return {
          ...state,
          steps: setStep(state.steps, node, "running"),
          messages: state.messages.map((m) => (messageNode(m.id) === node ? { ...m, open: false, superseded: true } : m)),
        };
      }
      if (event.name === "HITL_REQUESTED" || event.name === "HITL_ESCALATED" || event.name === "HITL_RESOLVED") {
        return { ...state, requestEvents: state.requestEvents + 1 };
      }
      if (event.name === "LLM_USAGE") {
        const usage: LiveUsage = {
          node,
          model: typeof value.model === "string" ? value.model : undefined,
          inputTokens: num(value.input_tokens),
          outputTokens: num(value.output_tokens),
          costUsd: num(value.cost_usd),
        };
        return { ...state, usage: [...state.usage, usage] };
      }
      return state;
    }
    case "RUN_FINISHED": {
      const result = record(event.result);
      const outputs = "outputs" in result ? record(result.outputs) : result;
      return {
        ...state,
        phase: "finished",
        outputs,
        messages: state.messages.map((m) => ({ ...m, open: false })),
      };
    }
    case "RUN_ERROR":
      return {
        ...state,
        phase: "error",
        error: event.message ?? "The run failed.",
        messages: state.messages.map((m) => ({ ...m, open: false })),
      };
    default:
      return state;
  }
}

type Action = { kind: "event"; event: AgUiEvent } | { kind: "connection-error"; message: string } | { kind: "reset" };

function reducer(state: LiveRun, action: Action): LiveRun {
  if (action.kind === "reset") return INITIAL_LIVE;
  if (action.kind === "connection-error") return { ...state, connectionError: action.message };
  return applyRunEvent(state, action.event);
}

/** The URL of a run's live stream. */
export function streamUrl(orgSlug: string, wsId: string, runId: string): string {
  const enc = encodeURIComponent;
  return `/api/orgs/${enc(orgSlug)}/workspaces/${enc(wsId)}/runs/${enc(runId)}/stream`;
}

/**
 * Follow a run's stream with `EventSource` (the session cookie authenticates it). The stream
 * replays the run from its start, so this also shows finished runs. It is closed once the run
 * ends — otherwise `EventSource` would reconnect — and on unmount.
 */
export function useRunStream(url: string | null, onEnd?: () => void): LiveRun {
  const [state, dispatch] = useReducer(reducer, INITIAL_LIVE);
  useEffect(() => {
    if (!url) return;
    dispatch({ kind: "reset" });
    if (typeof EventSource === "undefined") {
      dispatch({ kind: "connection-error", message: "This browser cannot follow a run live." });
      return;
    }
    const source = new EventSource(url, { withCredentials: true });
    let ended = false;
    source.onmessage = (message: MessageEvent) => {
      let event: AgUiEvent;
      try {
        event = JSON.parse(String(message.data)) as AgUiEvent;
      } catch {
        return;
      }
      dispatch({ kind: "event", event });
      if (event.type === "RUN_FINISHED" || event.type === "RUN_ERROR") {
        ended = true;
        source.close();
        onEnd?.();
      }
    };
    source.onerror = () => {
      // CONNECTING: the browser retries by itself (resuming from Last-Event-ID); CLOSED: it gave up.
      if (!ended && source.readyState === 2 /* EventSource.CLOSED */) {
        dispatch({ kind: "connection-error", message: "The live view could not connect. Reload the page to try again." });
      }
    };
    return () => {
      ended = true;
      source.close();
    };
    // onEnd is a notification only; a new one must not reopen the stream.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [url]);
  return state;
}
