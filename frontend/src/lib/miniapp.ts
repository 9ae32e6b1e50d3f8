/**
 * A published app, as its visitors use it: who the visitor is (a visitor token kept per app in
 * this browser, an app key kept for the tab, or the member's session), the form its inputs ask
 * for and the inputs object it sends, the rate limit's countdown, and the run followed live
 * (AG-UI over Server-Sent Events, read with `fetch` so an app key can go in a header).
 */
import { useEffect, useReducer, useState } from "react";
import { ApiError, api, call, toApiError, type Page, type Schemas } from "../api/client";
import { INITIAL_LIVE, applyRunEvent, TERMINAL, type AgUiEvent, type LiveRun } from "./runs";

export type PublicApp = Schemas["PublicAppOut"];
export type AppInput = Schemas["InputFieldOut"];
export type AppRun = Schemas["AppRunOut"];
export type AppRunDetail = Schemas["AppRunDetailOut"];

// -- who the visitor is ----------------------------------------------------------------------

/** How a visitor proves who they are, besides a member's session cookie. */
export interface VisitorAuth {
  /** The anonymous identity the app issued to this browser (`X-App-Visitor`). */
  token: string | null;
  /** An app key (`ffa_...`) pasted by a partner (`Authorization: Bearer`). */
  appKey: string | null;
}

export const VISITOR_HEADER = "X-App-Visitor";

export function visitorTokenKey(org: string, slug: string): string {
  return `fireflow.visitor.${org}/${slug}`;
}

export function appKeyKey(org: string, slug: string): string {
  return `fireflow.app-key.${org}/${slug}`;
}

// Storage can be refused (a framed page with third-party storage blocked): keep the values
// for the page's lifetime then, rather than failing.
const memory = new Map<string, string>();

function storageOf(kind: "local" | "session"): Storage | null {
  try {
    return kind === "local" ? window.localStorage : window.sessionStorage;
  } catch {
    return null;
  }
}

function readStored(kind: "local" | "session", key: string): string | null {
  try {
    const value = storageOf(kind)?.getItem(key);
    if (value) return value;
  } catch {
    // fall through to memory
  }
  return memory.get(`${kind}:${key}`) ?? null;
}

function writeStored(kind: "local" | "session", key: string, value: string | null): void {
  if (value === null) memory.delete(`${kind}:${key}`);
  else memory.set(`${kind}:${key}`, value);
  try {
    const storage = storageOf(kind);
    if (value === null) storage?.removeItem(key);
    else storage?.setItem(key, value);
  } catch {
    // kept in memory above
  }
}

/** The visitor token this browser holds for the app (kept across visits). */
export function readVisitorToken(org: string, slug: string): string | null {
  return readStored("local", visitorTokenKey(org, slug));
}

export function keepVisitorToken(org: string, slug: string, token: string | null): void {
  writeStored("local", visitorTokenKey(org, slug), token);
}

/** The app key pasted for the app, kept for this tab only: a key is a password. */
export function readAppKey(org: string, slug: string): string | null {
  return readStored("session", appKeyKey(org, slug));
}

export function keepAppKey(org: string, slug: string, key: string | null): void {
  writeStored("session", appKeyKey(org, slug), key);
}

/** The headers that name the visitor: the app key if there is one, else the visitor token. */
export function visitorHeaders(auth: VisitorAuth): Record<string, string> {
  if (auth.appKey) return { Authorization: `Bearer ${auth.appKey}` };
  if (auth.token) return { [VISITOR_HEADER]: auth.token };
  return {};
}

export function authOf(org: string, slug: string): VisitorAuth {
  return { token: readVisitorToken(org, slug), appKey: readAppKey(org, slug) };
}

// -- the API ---------------------------------------------------------------------------------

/** Open the app: its form and who the visitor is. A new visitor token is kept for next time. */
export async function openApp(org: string, slug: string): Promise<PublicApp> {
  const app = await call(() =>
    api.GET("/api/apps/{org_slug}/{app_slug}", {
      params: { path: { org_slug: org, app_slug: slug } },
      headers: visitorHeaders(authOf(org, slug)),
    }),
  );
  if (app.visitor_token) keepVisitorToken(org, slug, app.visitor_token);
  return app;
}

/** A 429: the detail to show and how many seconds to wait. */
export class RateLimitedError extends ApiError {
  readonly retryAfter: number;

  constructor(error: ApiError, retryAfter: number) {
    super(error.status, error.detail, error.code, error.fields);
    this.name = "RateLimitedError";
    this.retryAfter = retryAfter;
  }
}

/** Seconds from a Retry-After header (seconds or an HTTP date), else from "in N s" in the detail, else a minute. */
export function retryAfterSeconds(header: string | null, detail = "", now = Date.now()): number {
  const value = header?.trim() ?? "";
  if (/^\d+$/.test(value)) return Math.max(1, Number(value));
  if (value) {
    const at = Date.parse(value);
    if (Number.isFinite(at)) return Math.max(1, Math.ceil((at - now) / 1000));
  }
  const said = /\bin (\d+) ?s\b/.exec(detail);
  return said ? Math.max(1, Number(said[1])) : 60;
}

export async function startAppRun(org: string, slug: string, inputs: Record<string, unknown>): Promise<AppRun> {
  let retryAfter: string | null = null;
  try {
    return await call(async () => {
      const result = await api.POST("/api/apps/{org_slug}/{app_slug}/runs", {
        params: { path: { org_slug: org, app_slug: slug } },
        headers: visitorHeaders(authOf(org, slug)),
        body: { inputs },
      });
      retryAfter = result.response.headers.get("Retry-After");
      return result;
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 429) {
      throw new RateLimitedError(err, retryAfterSeconds(retryAfter, err.detail));
    }
    throw err;
  }
}

export function listAppRuns(org: string, slug: string, cursor: string | null): Promise<Page<AppRun>> {
  return call(() =>
    api.GET("/api/apps/{org_slug}/{app_slug}/runs", {
      params: { path: { org_slug: org, app_slug: slug }, query: { cursor: cursor ?? undefined, page_size: 10 } },
      headers: visitorHeaders(authOf(org, slug)),
    }),
  ) as Promise<Page<AppRun>>;
}

export function getAppRun(org: string, slug: string, runId: string): Promise<AppRunDetail> {
  return call(() =>
    api.GET("/api/apps/{org_slug}/{app_slug}/runs/{run_id}", {
      params: { path: { org_slug: org, app_slug: slug, run_id: runId } },
      headers: visitorHeaders(authOf(org, slug)),
    }),
  );
}

export function appStreamUrl(org: string, slug: string, runId: string): string {
  const enc = encodeURIComponent;
  return `/api/apps/${enc(org)}/${enc(slug)}/runs/${enc(runId)}/stream`;
}

// -- the form --------------------------------------------------------------------------------

/** What the form holds per input: text for typed values, a flag for booleans. */
export type FormValues = Record<string, string | boolean>;

const JSON_TYPES = new Set(["json", "list", "messages", "file", "any"]);

/** Inputs typed as JSON in a textarea. */
export function isJsonInput(type: string): boolean {
  return JSON_TYPES.has(type) || !["text", "number", "boolean"].includes(type);
}

/** "first_name" -> "First name". */
export function inputLabel(name: string): string {
  const words = name.replace(/[_-]+/g, " ").trim();
  return words ? words[0]!.toUpperCase() + words.slice(1) : name;
}

/** The form's first values: each input's default, written the way its control shows it. */
export function initialValues(inputs: readonly AppInput[]): FormValues {
  const values: FormValues = {};
  for (const input of inputs) {
    const fallback = input.default;
    if (input.type === "boolean") values[input.name] = fallback === true;
    else if (fallback === undefined || fallback === null) values[input.name] = "";
    else if (isJsonInput(input.type)) values[input.name] = JSON.stringify(fallback, null, 2);
    else values[input.name] = String(fallback);
  }
  return values;
}

/** A JSON example per type, for hints and errors. */
export const JSON_EXAMPLE: Record<string, string> = {
  list: '["first", "second"]',
  messages: '[{"role": "user", "content": "Hello"}]',
  json: '{"key": "value"}',
};

function parseJsonInput(type: string, text: string): { value?: unknown; error?: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { error: `This is not valid JSON (${reason}).${JSON_EXAMPLE[type] ? ` Example: ${JSON_EXAMPLE[type]}` : ""}` };
  }
  if ((type === "list" || type === "messages") && !Array.isArray(value)) {
    return { error: `Enter a JSON list, like ${JSON_EXAMPLE[type]}.` };
  }
  return { value };
}

/**
 * The run's `inputs` from the form, or what is wrong per input. An empty optional input is
 * left out, so the flow's default applies.
 */
export function toInputs(
  inputs: readonly AppInput[],
  values: FormValues,
): { inputs: Record<string, unknown>; errors: Record<string, string> } {
  const out: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const input of inputs) {
    const raw = values[input.name];
    if (input.type === "boolean") {
      out[input.name] = raw === true;
      continue;
    }
    const text = typeof raw === "string" ? raw : "";
    const blank = input.type === "text" ? text === "" : text.trim() === "";
    if (blank) {
      if (input.required) errors[input.name] = `${inputLabel(input.name)} is required.`;
      continue;
    }
    if (input.type === "text") {
      out[input.name] = text;
    } else if (input.type === "number") {
      const n = Number(text.trim());
      if (Number.isFinite(n)) out[input.name] = n;
      else errors[input.name] = "Enter a number, like 42 or 3.5.";
    } else {
      const parsed = parseJsonInput(input.type, text);
      if (parsed.error) errors[input.name] = parsed.error;
      else out[input.name] = parsed.value;
    }
  }
  return { inputs: out, errors };
}

/**
 * The server's `fields` for a refused run, split into messages for the form's inputs (keys
 * `nodes.<input node>.<name>` or `inputs.<name>`) and the rest, for the alert.
 */
export function inputErrorsFromServer(
  fields: Record<string, string>,
  names: readonly string[],
): { byInput: Record<string, string>; other: string[] } {
  const byInput: Record<string, string> = {};
  const other: string[] = [];
  for (const [key, message] of Object.entries(fields)) {
    const parts = key.split(".");
    const name = parts[0] === "nodes" ? parts.slice(2).join(".") : parts[0] === "inputs" ? parts.slice(1).join(".") : key;
    if (names.includes(name)) byInput[name] = byInput[name] ? `${byInput[name]}; ${message}` : message;
    else other.push(message);
  }
  return { byInput, other };
}

/** A past run's inputs in one short line. */
export function summariseInputs(inputs: Record<string, unknown>, max = 80): string {
  const text = Object.entries(inputs)
    .map(([name, value]) => `${name}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" · ");
  if (!text) return "no inputs";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// -- the rate limit --------------------------------------------------------------------------

/**
 * What the 429 alert says with `secondsLeft` to go: the server's detail with its "in N s"
 * counted down (or a sentence added); null once the wait is over.
 */
export function rateLimitMessage(detail: string, secondsLeft: number): string | null {
  if (secondsLeft <= 0) return null;
  const pattern = /\bin \d+ ?s\b/;
  if (pattern.test(detail)) return detail.replace(pattern, `in ${secondsLeft} s`);
  return `${detail} Try again in ${secondsLeft} s.`;
}

/** Whole seconds until `until` (epoch ms), ticking; 0 when it passed or there is none. */
export function useSecondsLeft(until: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (until === null) return;
    setNow(Date.now());
    const timer = window.setInterval(() => {
      const current = Date.now();
      setNow(current);
      if (current >= until) window.clearInterval(timer);
    }, 250);
    return () => window.clearInterval(timer);
  }, [until]);
  return until === null ? 0 : Math.max(0, Math.ceil((until - now) / 1000));
}

// -- the run, live ---------------------------------------------------------------------------

/** A step of the run that waits for a person (visitors see it, members answer it elsewhere). */
export interface HumanStep {
  node: string;
  title: string;
  message: string;
  state: "waiting" | "answered";
  outcome?: string;
}

export interface AppLive {
  live: LiveRun;
  humans: HumanStep[];
}

export const INITIAL_APP_LIVE: AppLive = { live: INITIAL_LIVE, humans: [] };

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** Fold one event into the visitor's view: the run reducer's, plus the human steps' cards. */
export function applyAppEvent(state: AppLive, event: AgUiEvent): AppLive {
  const live = applyRunEvent(state.live, event);
  let humans = state.humans;
  if (event.type === "CUSTOM" && typeof event.value === "object" && event.value !== null) {
    const value = event.value as Record<string, unknown>;
    const node = text(value.node);
    if (event.name === "HITL_REQUESTED") {
      humans = [...humans, { node, title: text(value.title), message: text(value.message), state: "waiting" }];
    } else if (event.name === "HITL_RESOLVED") {
      const index = humans.findLastIndex((h) => h.node === node && h.state === "waiting");
      if (index >= 0) {
        humans = humans.map((h, i) => (i === index ? { ...h, state: "answered", outcome: text(value.outcome) } : h));
      }
    }
  }
  return live === state.live && humans === state.humans ? state : { live, humans };
}

/** The run's status to show: the server's once final, else what the stream says. */
export function shownStatus(serverStatus: string | undefined, live: LiveRun): string {
  if (serverStatus && TERMINAL.includes(serverStatus)) return serverStatus;
  if (live.phase === "finished") return "completed";
  if (live.phase === "error") return "failed";
  if (live.phase === "running") return "running";
  return serverStatus ?? "queued";
}

export interface SseMessage {
  id: string | null;
  data: string;
}

/**
 * Read a Server-Sent Events body, calling `onMessage` for each message as it arrives
 * (the `data` lines joined; `id` as sent). Resolves when the body ends.
 */
export async function readEventStream(body: ReadableStream<Uint8Array>, onMessage: (message: SseMessage) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let id: string | null = null;
  const line = (row: string) => {
    if (row === "") {
      if (data.length > 0) onMessage({ id, data: data.join("\n") });
      data = [];
      id = null;
      return;
    }
    if (row.startsWith(":")) return;
    const colon = row.indexOf(":");
    const field = colon < 0 ? row : row.slice(0, colon);
    let value = colon < 0 ? "" : row.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "id") id = value;
  };
  for (;;) {
    const { done, value } = await reader.read();
    buffer += decoder.decode(value, { stream: !done });
    const rows = buffer.split(/\r\n|\r|\n/);
    buffer = done ? "" : (rows.pop() ?? "");
    rows.forEach(line);
    if (done) {
      line("");
      return;
    }
  }
}

type Action = { kind: "event"; event: AgUiEvent } | { kind: "connection-error"; message: string } | { kind: "reset" };

function reducer(state: AppLive, action: Action): AppLive {
  if (action.kind === "reset") return INITIAL_APP_LIVE;
  if (action.kind === "connection-error") return { ...state, live: { ...state.live, connectionError: action.message } };
  return applyAppEvent(state, action.event);
}

const RECONNECTS = 5;

/**
 * Follow a visitor's run: `fetch` the stream with the visitor's headers (and the session
 * cookie), fold its events, and pick up where it stopped (`Last-Event-ID`) if the connection
 * drops before the run ends. The stream replays from the start, so past runs show too.
 */
export function useAppRunStream(url: string | null, auth: VisitorAuth, onEnd?: () => void): AppLive {
  const [state, dispatch] = useReducer(reducer, INITIAL_APP_LIVE);
  const { token, appKey } = auth;
  useEffect(() => {
    if (!url) return;
    dispatch({ kind: "reset" });
    const abort = new AbortController();
    let lastId: string | null = null;
    let ended = false;
    const follow = async () => {
      for (let attempt = 0; attempt <= RECONNECTS && !abort.signal.aborted; attempt++) {
        let response: Response;
        try {
          response = await globalThis.fetch(new URL(url, window.location.origin), {
            credentials: "same-origin",
            signal: abort.signal,
            headers: {
              Accept: "text/event-stream",
              ...visitorHeaders({ token, appKey }),
              ...(lastId ? { "Last-Event-ID": lastId } : {}),
            },
          });
        } catch {
          if (abort.signal.aborted) return;
          await new Promise((resolve) => window.setTimeout(resolve, 1000 * (attempt + 1)));
          continue;
        }
        if (!response.ok || !response.body) {
          const body: unknown = await response.json().catch(() => null);
          dispatch({ kind: "connection-error", message: toApiError(response.status, body).detail });
          return;
        }
        try {
          await readEventStream(response.body, (message) => {
            if (message.id) lastId = message.id;
            let event: AgUiEvent;
            try {
              event = JSON.parse(message.data) as AgUiEvent;
            } catch {
              return;
            }
            attempt = 0;
            dispatch({ kind: "event", event });
            if (event.type === "RUN_FINISHED" || event.type === "RUN_ERROR") ended = true;
          });
        } catch {
          // The connection dropped: reconnect below.
        }
        if (abort.signal.aborted) return;
        if (ended) {
          onEnd?.();
          return;
        }
        await new Promise((resolve) => window.setTimeout(resolve, 500 * (attempt + 1)));
      }
      if (!abort.signal.aborted && !ended) {
        dispatch({ kind: "connection-error", message: "The live view lost its connection. Reload the page to see the run." });
      }
    };
    void follow();
    return () => abort.abort();
    // onEnd is a notification only; a new one must not reopen the stream.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [url, token, appKey]);
  return state;
}
