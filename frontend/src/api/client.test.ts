import { afterEach, describe, expect, it, vi } from "vitest";
import { installFakeFetch } from "../test/fakeFetch";
import { api, ApiError, call, cursorOf } from "./client";

afterEach(() => vi.unstubAllGlobals());

describe("the API client", () => {
  it("sends the csrftoken cookie as X-CSRFToken on unsafe methods only", async () => {
    document.cookie = "csrftoken=tok-123; path=/";
    const { calls } = installFakeFetch({
      "GET /api/auth/me": { status: 401, body: { detail: "no", code: "not_authenticated", fields: {} } },
      "POST /api/auth/logout": { status: 204 },
    });
    await expect(call(() => api.GET("/api/auth/me"))).rejects.toBeInstanceOf(ApiError);
    await call(() => api.POST("/api/auth/logout"));

    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual(["GET /api/auth/me", "POST /api/auth/logout"]);
    expect(calls[0]!.headers.get("X-CSRFToken")).toBeNull();
    expect(calls[1]!.headers.get("X-CSRFToken")).toBe("tok-123");
  });

  it("asks the server for a CSRF cookie first when there is none", async () => {
    const { calls } = installFakeFetch({
      "GET /api/auth/csrf": { status: 204, cookies: ["csrftoken=fresh-token"] },
      "POST /api/auth/logout": { status: 204 },
    });
    await call(() => api.POST("/api/auth/logout"));
    expect(calls.map((c) => c.path)).toEqual(["/api/auth/csrf", "/api/auth/logout"]);
    expect(calls[1]!.headers.get("X-CSRFToken")).toBe("fresh-token");
  });

  it("turns the error body into an ApiError with detail, code and field messages", async () => {
    document.cookie = "csrftoken=t; path=/";
    installFakeFetch({
      "POST /api/auth/signup": {
        status: 409,
        body: { detail: "The URL slug 'acme' is taken.", code: "conflict", fields: { org_slug: "taken" } },
      },
    });
    const error = await call(() =>
      api.POST("/api/auth/signup", {
        body: { org_name: "Acme", org_slug: "acme", name: "Ada", email: "a@b.co", password: "x" },
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 409, code: "conflict", message: "The URL slug 'acme' is taken." });
    expect((error as ApiError).fields).toEqual({ org_slug: "taken" });
  });

  it("retries once with a fresh token when the server says the CSRF check failed", async () => {
    document.cookie = "csrftoken=stale; path=/";
    let attempts = 0;
    const { calls } = installFakeFetch({
      "GET /api/auth/csrf": { status: 204, cookies: ["csrftoken=rotated"] },
      "POST /api/auth/logout": (request) => {
        attempts += 1;
        return request.headers.get("X-CSRFToken") === "rotated"
          ? { status: 204 }
          : { status: 403, body: { detail: "CSRF check failed", code: "csrf_failed", fields: {} } };
      },
    });
    await call(() => api.POST("/api/auth/logout"));
    expect(attempts).toBe(2);
    expect(calls.at(-1)!.headers.get("X-CSRFToken")).toBe("rotated");
  });

  it("reports a network failure as an ApiError the user can read", async () => {
    vi.stubGlobal("fetch", vi.fn(() => Promise.reject(new TypeError("Failed to fetch"))));
    await expect(call(() => api.GET("/api/auth/me"))).rejects.toMatchObject({ status: 0, code: "network" });
  });

  it("reads the cursor out of the pagination links", () => {
    expect(cursorOf("http://testserver/api/orgs/acme/audit?cursor=cD0y&page_size=50")).toBe("cD0y");
    expect(cursorOf(null)).toBeNull();
  });
});
