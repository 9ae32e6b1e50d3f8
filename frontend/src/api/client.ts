/**
 * The typed API client: openapi-fetch over the generated schema, with the browser session's
 * rules built in (same-origin cookies, the CSRF header on unsafe methods) and one error type,
 * `ApiError`, carrying the server's `{detail, code, fields}`.
 */
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Me = Schemas["MeOut"];
export type User = Schemas["UserOut"];
export type OrgSummary = Schemas["OrgSummaryOut"];
export type Org = Schemas["OrgOut"];
export type OrgRole = Schemas["OrgRole"];
export type WorkspaceRole = Schemas["WorkspaceRole"];
export type Member = Schemas["MemberOut"];
export type Invitation = Schemas["InvitationOut"];
export type InvitationCreated = Schemas["InvitationCreatedOut"];
export type InvitationPreview = Schemas["InvitationPreviewOut"];
export type Workspace = Schemas["WorkspaceOut"];
export type WorkspaceMember = Schemas["WorkspaceMemberOut"];
export type AuditEvent = Schemas["AuditEventOut"];
export type ApiKey = Schemas["ApiKeyOut"];
export type ApiKeyCreated = Schemas["ApiKeyCreatedOut"];
export type Flow = Schemas["FlowOut"];
export type Run = Schemas["RunOut"];
export type RunDetail = Schemas["RunDetailOut"];

export interface Page<T> {
  results: T[];
  next: string | null;
  previous: string | null;
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Absolute same-origin base (a bare "/api/..." is not a valid URL for `new Request` outside a page). */
const ORIGIN = typeof window !== "undefined" ? window.location.origin : "";
export const CSRF_COOKIE = "csrftoken";

/** A failed API call: what the server said, ready to show to the user. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: Record<string, string>;

  constructor(status: number, detail: string, code: string, fields: Record<string, string> = {}) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields;
  }

  get detail(): string {
    return this.message;
  }
}

export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** Make sure the CSRF cookie exists (Django sets it on the console page; this covers the rest). */
async function csrfToken(): Promise<string | null> {
  let token = readCookie(CSRF_COOKIE);
  if (!token) {
    await globalThis.fetch(`${ORIGIN}/api/auth/csrf`, { credentials: "same-origin" });
    token = readCookie(CSRF_COOKIE);
  }
  return token;
}

const csrfMiddleware: Middleware = {
  async onRequest({ request }) {
    if (UNSAFE.has(request.method.toUpperCase())) {
      const token = await csrfToken();
      if (token) request.headers.set("X-CSRFToken", token);
    }
    return request;
  },
};

export const api = createClient<paths>({
  baseUrl: ORIGIN,
  credentials: "same-origin",
  headers: { Accept: "application/json" },
  // Looked up on each call, so tests (and polyfills) can swap `fetch` after import.
  fetch: (request: Request) => globalThis.fetch(request),
});
api.use(csrfMiddleware);

function isErrorBody(body: unknown): body is { detail: string; code?: string; fields?: Record<string, string> } {
  return typeof body === "object" && body !== null && typeof (body as { detail?: unknown }).detail === "string";
}

/** Turn any failure body (ours, or a proxy's HTML) into an ApiError. */
export function toApiError(status: number, body: unknown): ApiError {
  if (isErrorBody(body)) {
    return new ApiError(status, body.detail, body.code ?? "error", body.fields ?? {});
  }
  if (status === 0) return new ApiError(0, "Cannot reach the server. Check your connection.", "network");
  return new ApiError(status, `The server answered ${status}. Try again in a moment.`, "unexpected");
}

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/**
 * Await an openapi-fetch call and return its data, or throw an ApiError.
 * A 403 `csrf_failed` (the token rotated under us, e.g. after logging in elsewhere) is
 * retried once with a fresh token.
 */
export async function call<T>(request: () => Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await request();
    if (
      result.response.status === 403 &&
      isErrorBody(result.error) &&
      result.error.code === "csrf_failed"
    ) {
      await globalThis.fetch(`${ORIGIN}/api/auth/csrf`, { credentials: "same-origin" });
      result = await request();
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw toApiError(0, null);
  }
  if (!result.response.ok) throw toApiError(result.response.status, result.error);
  return result.data as T;
}

/** The `cursor` of a pagination link (the API returns full URLs in next/previous). */
export function cursorOf(link: string | null): string | null {
  if (!link) return null;
  try {
    return new URL(link, window.location.origin).searchParams.get("cursor") ?? link;
  } catch {
    return link;
  }
}
