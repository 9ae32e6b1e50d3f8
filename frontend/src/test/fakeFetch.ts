/**
 * A fake `fetch` for unit tests: the browser code runs unchanged, the answers come from a
 * table of routes. Records every request (method, path, headers, JSON body).
 */
import { vi } from "vitest";

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: unknown;
}

export interface Reply {
  status?: number;
  body?: unknown;
  /** cookies the server sets (name=value) */
  cookies?: string[];
}

type Handler = (request: Recorded) => Reply | Promise<Reply>;

export function installFakeFetch(routes: Record<string, Handler | Reply>) {
  const calls: Recorded[] = [];
  const fake = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), window.location.origin), init);
    const url = new URL(request.url);
    const text = request.method === "GET" || request.method === "HEAD" ? "" : await request.text();
    const recorded: Recorded = {
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    calls.push(recorded);
    const route = routes[`${request.method} ${url.pathname}`];
    if (!route) {
      return jsonResponse(404, { detail: `No fake route for ${request.method} ${url.pathname}`, code: "not_found", fields: {} });
    }
    const reply = typeof route === "function" ? await route(recorded) : route;
    for (const cookie of reply.cookies ?? []) document.cookie = `${cookie}; path=/`;
    return jsonResponse(reply.status ?? 200, reply.body);
  });
  vi.stubGlobal("fetch", fake);
  return { calls, fake };
}

function jsonResponse(status: number, body: unknown): Response {
  if (status === 204 || body === undefined) return new Response(null, { status });
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

export const ME = {
  user: { id: "u-1", email: "ada@example.com", name: "Ada Lovelace", email_verified: true },
  organizations: [{ id: "o-1", name: "Acme", slug: "acme", role: "owner" as const }],
};
