import { render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter } from "react-router";
import type { Me, OrgRole } from "../api/client";
import { AppRoutes } from "../App";
import { ToastProvider } from "../components/toast";
import { AuthProvider } from "../lib/auth";
import { ME, installFakeFetch } from "../test/fakeFetch";

afterEach(() => vi.unstubAllGlobals());

function openConsole(role: OrgRole, path: string, me: Me = ME) {
  installFakeFetch({
    "GET /api/orgs/acme": {
      body: { id: "o-1", name: "Acme", slug: "acme", created_at: "2026-01-01T00:00:00Z", role },
    },
    "GET /api/orgs/acme/workspaces": { body: { results: [], next: null, previous: null } },
    "GET /api/orgs/acme/billing": {
      body: {
        configured: false,
        plan: null,
        subscription_status: "",
        current_period_end: null,
        cancel_at_period_end: false,
        plans: [],
      },
    },
  });
  render(
    <MemoryRouter initialEntries={[path]}>
      <ToastProvider>
        <AuthProvider initial={me}>
          <AppRoutes />
        </AuthProvider>
      </ToastProvider>
    </MemoryRouter>,
  );
}

function navLinks() {
  return screen.getAllByRole("link").filter((a) => a.closest("nav[aria-label='Organisation']")).map((a) => a.textContent);
}

describe("the organisation shell", () => {
  it("shows owners every section", async () => {
    openConsole("owner", "/orgs/acme/workspaces");
    await screen.findByRole("heading", { name: "Workspaces", level: 1 });
    expect(navLinks()).toEqual(["Workspaces", "Members", "Invitations", "Audit log", "API keys", "Secrets", "Costs", "Billing"]);
    expect(screen.getByRole("button", { name: "New workspace" })).toBeInTheDocument();
  });

  it("shows members no invitations, audit log or workspace creation", async () => {
    openConsole("member", "/orgs/acme/workspaces");
    await screen.findByRole("heading", { name: "Workspaces", level: 1 });
    expect(navLinks()).toEqual(["Workspaces", "Members", "API keys", "Secrets"]);
    expect(screen.queryByRole("button", { name: "New workspace" })).toBeNull();
  });

  it("sends billing members to billing and explains the rest is not for them", async () => {
    openConsole("billing", "/orgs/acme");
    expect(await screen.findByRole("heading", { name: "Billing", level: 1 })).toBeInTheDocument();
    expect(navLinks()).toEqual(["Costs", "Billing"]);
    expect(await screen.findByText("Billing through Stripe is not set up on this server")).toBeInTheDocument();
  });

  it("opens billing for admins", async () => {
    openConsole("admin", "/orgs/acme/billing");
    expect(await screen.findByRole("heading", { name: "Billing", level: 1 })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Billing" })).toHaveAttribute("aria-current", "page");
  });

  it("opens the costs page for billing members, and not for members", async () => {
    openConsole("billing", "/orgs/acme/costs");
    expect(await screen.findByRole("heading", { name: "Costs", level: 1 })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Costs" })).toHaveAttribute("aria-current", "page");
  });

  it("explains to members that costs are not part of their role", async () => {
    openConsole("member", "/orgs/acme/costs");
    expect(await screen.findByText(/does not include costs/)).toBeInTheDocument();
    expect(screen.queryByRole("heading", { name: "Costs", level: 1 })).toBeNull();
  });

  it("asks unverified users to verify their email, with a resend button", async () => {
    openConsole("owner", "/orgs/acme/workspaces", { ...ME, user: { ...ME.user, email_verified: false } });
    expect(await screen.findByTestId("verify-banner")).toHaveTextContent("ada@example.com");
    expect(screen.getByRole("button", { name: "Resend" })).toBeInTheDocument();
  });
});
