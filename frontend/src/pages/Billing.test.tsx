import { act, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { OrgRole, Schemas } from "../api/client";
import { formatMinor } from "../lib/money";
import { ME, installFakeFetch, type Recorded, type Reply } from "../test/fakeFetch";
import { renderPage } from "../test/render";
import { BillingPage, POLL_FOR_MS, POLL_MS } from "./Billing";

type Billing = Schemas["BillingOut"];
type Plan = Schemas["PlanOut"];
type Invoice = Schemas["InvoiceOut"];

beforeEach(() => {
  document.cookie = "csrftoken=t; path=/";
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const FREE: Plan = {
  code: "free",
  name: "Free",
  description: "Try FireFlow.",
  monthly_price_cents: 0,
  included_usage_micros: 5_000_000,
  spend_cap_micros: 5_000_000,
};
const PRO: Plan = {
  code: "pro",
  name: "Pro",
  description: "For teams shipping flows.",
  monthly_price_cents: 4900,
  included_usage_micros: 50_000_000,
  spend_cap_micros: 500_000_000,
};
const SCALE: Plan = {
  code: "scale",
  name: "Scale",
  description: "No ceiling.",
  monthly_price_cents: 29900,
  included_usage_micros: 400_000_000,
  spend_cap_micros: null,
};

function billing(extra: Partial<Billing> = {}): Billing {
  return {
    configured: true,
    plan: null,
    subscription_status: "",
    current_period_end: null,
    cancel_at_period_end: false,
    plans: [FREE, PRO, SCALE],
    ...extra,
  };
}

const SUBSCRIBED = billing({
  plan: PRO,
  subscription_status: "active",
  current_period_end: "2026-04-30T12:00:00Z",
});

function invoice(extra: Partial<Invoice> = {}): Invoice {
  return {
    id: "in_1",
    number: "FF-0001",
    status: "paid",
    amount_due: 4900,
    amount_paid: 4900,
    currency: "usd",
    created: "2026-03-31T12:00:00Z",
    hosted_invoice_url: "https://invoice.stripe.test/i/in_1",
    ...extra,
  };
}

function open({
  role = "owner",
  path = "/",
  routes = {},
}: {
  role?: OrgRole;
  path?: string;
  routes?: Record<string, Reply | ((request: Recorded) => Reply)>;
} = {}) {
  const fake = installFakeFetch({
    "GET /api/orgs/acme/billing": { body: billing() },
    "GET /api/orgs/acme/billing/invoices": { body: [invoice()] },
    ...routes,
  });
  const view = renderPage(<BillingPage />, { role, me: ME, path });
  return { ...fake, ...view };
}

/** Replace the browser's location (its `assign` cannot be spied on in jsdom). */
function stubLocation() {
  const assign = vi.fn();
  vi.stubGlobal("location", { ...window.location, origin: window.location.origin, href: window.location.href, assign });
  return assign;
}

const invoicesCalls = (calls: Recorded[]) => calls.filter((c) => c.path === "/api/orgs/acme/billing/invoices");
const billingCalls = (calls: Recorded[]) => calls.filter((c) => c.path === "/api/orgs/acme/billing");

describe("money in the smallest unit", () => {
  it("formats cents, whole prices and zero-decimal currencies", () => {
    expect(formatMinor(4900)).toBe("$49.00");
    expect(formatMinor(4900, "usd", { whole: true })).toBe("$49");
    expect(formatMinor(4950, "usd", { whole: true })).toBe("$49.50");
    expect(formatMinor(1234, "eur")).toBe("€12.34");
    expect(formatMinor(500, "jpy")).toBe("¥500");
  });
});

describe("billing page", () => {
  it("shows the current plan, the plans and the invoices", async () => {
    open({
      routes: {
        "GET /api/orgs/acme/billing": { body: { ...SUBSCRIBED, cancel_at_period_end: true } },
        "GET /api/orgs/acme/billing/invoices": {
          body: [invoice(), invoice({ id: "in_2", number: "FF-0002", status: "open", amount_due: 12_345, amount_paid: 0 })],
        },
      },
    });

    const current = await screen.findByTestId("billing-plan");
    expect(current).toHaveAttribute("data-plan", "pro");
    expect(current).toHaveAttribute("data-status", "active");
    expect(current).toHaveTextContent("Current plan: Pro");
    expect(current).toHaveTextContent("active");
    expect(current).toHaveTextContent(/Ends on .*2026/);
    expect(current).toHaveTextContent("cancels at period end");
    expect(within(current).getByTestId("plan-included")).toHaveTextContent("$50.00");
    expect(within(current).getByTestId("plan-cap")).toHaveTextContent("$500.00");

    const pro = screen.getByTestId("plan-pro");
    expect(pro).toHaveTextContent("$49 / month");
    expect(pro).toHaveTextContent("For teams shipping flows.");
    expect(pro).toHaveTextContent("$50.00 of LLM usage included");
    expect(pro).toHaveTextContent("Spend capped at $500.00");
    expect(within(pro).getByText("Current")).toBeInTheDocument();
    expect(screen.getByTestId("plan-scale")).toHaveTextContent("No spend cap");
    expect(within(screen.getByTestId("plan-free")).queryByText("Current")).toBeNull();
    // Subscribed: plans change in the portal, not through Checkout.
    expect(screen.queryByRole("button", { name: /^Choose/ })).toBeNull();
    expect(screen.getByRole("button", { name: "Manage subscription" })).toBeInTheDocument();

    const invoices = screen.getByTestId("invoices");
    const first = await within(invoices).findByTestId("invoice-in_1");
    expect(first).toHaveTextContent("FF-0001");
    expect(first).toHaveTextContent("paid");
    expect(first).toHaveTextContent("$49.00");
    const link = within(first).getByRole("link", { name: /View/ });
    expect(link).toHaveAttribute("href", "https://invoice.stripe.test/i/in_1");
    expect(link).toHaveAttribute("target", "_blank");
    expect(link).toHaveAttribute("rel", "noreferrer");
    expect(within(invoices).getByTestId("invoice-in_2")).toHaveTextContent("$123.45");
  });

  it("marks the free plan current when there is no subscription, and offers the paid plans", async () => {
    open({ routes: { "GET /api/orgs/acme/billing/invoices": { body: [] } } });

    const current = await screen.findByTestId("billing-plan");
    expect(current).toHaveAttribute("data-plan", "free");
    expect(current).toHaveAttribute("data-status", "");
    expect(current).toHaveTextContent("no subscription");
    expect(within(current).getByTestId("plan-included")).toHaveTextContent("$5.00");
    expect(within(screen.getByTestId("plan-free")).getByText("Current")).toBeInTheDocument();
    expect(within(screen.getByTestId("plan-free")).queryByRole("button")).toBeNull();
    expect(within(screen.getByTestId("plan-pro")).getByRole("button", { name: "Choose Pro" })).toBeInTheDocument();
    expect(within(screen.getByTestId("plan-scale")).getByRole("button", { name: "Choose Scale" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Manage subscription" })).toBeNull();
    expect(await within(screen.getByTestId("invoices")).findByText("No invoices yet")).toBeInTheDocument();
  });

  it("Choose Pro posts the plan to Checkout and sends the browser to Stripe", async () => {
    const assign = stubLocation();
    const { calls } = open({
      routes: { "POST /api/orgs/acme/billing/checkout": { body: { url: "https://checkout.stripe.test/c/cs_1" } } },
    });

    await userEvent.click(await screen.findByRole("button", { name: "Choose Pro" }));

    await vi.waitFor(() => expect(assign).toHaveBeenCalledWith("https://checkout.stripe.test/c/cs_1"));
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe("/api/orgs/acme/billing/checkout");
    expect(post.body).toEqual({ plan: "pro" });
    expect(post.headers.get("X-CSRFToken")).toBe("t");
  });

  it("shows the refusal when the organisation is subscribed already, and fetches the status again", async () => {
    const assign = stubLocation();
    const { calls } = open({
      routes: {
        "POST /api/orgs/acme/billing/checkout": {
          status: 409,
          body: {
            detail: "The organisation is subscribed already: change the plan in the billing portal.",
            code: "subscribed",
            fields: {},
          },
        },
      },
    });
    await userEvent.click(await screen.findByRole("button", { name: "Choose Scale" }));

    expect(await within(screen.getByTestId("plans")).findByRole("alert")).toHaveTextContent(
      "The organisation is subscribed already: change the plan in the billing portal.",
    );
    expect(assign).not.toHaveBeenCalled();
    await vi.waitFor(() => expect(billingCalls(calls)).toHaveLength(2));
  });

  it("Manage subscription opens the billing portal", async () => {
    const assign = stubLocation();
    const { calls } = open({
      role: "billing",
      routes: {
        "GET /api/orgs/acme/billing": { body: SUBSCRIBED },
        "POST /api/orgs/acme/billing/portal": { body: { url: "https://billing.stripe.test/p/session" } },
      },
    });

    await userEvent.click(await screen.findByRole("button", { name: "Manage subscription" }));

    await vi.waitFor(() => expect(assign).toHaveBeenCalledWith("https://billing.stripe.test/p/session"));
    expect(calls.find((c) => c.method === "POST")!.path).toBe("/api/orgs/acme/billing/portal");
  });

  it("admins see the plan and invoices, but no Choose or Manage buttons", async () => {
    open({ role: "admin" });
    await screen.findByTestId("billing-plan");
    expect(await within(screen.getByTestId("invoices")).findByTestId("invoice-in_1")).toBeInTheDocument();
    expect(screen.getByTestId("plan-pro")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /^Choose/ })).toBeNull();
    expect(screen.queryByRole("button", { name: "Manage subscription" })).toBeNull();
    expect(screen.getByText("Owners and billing members choose the plan.")).toBeInTheDocument();
  });

  it("admins get no Manage button on a live subscription either", async () => {
    open({ role: "admin", routes: { "GET /api/orgs/acme/billing": { body: SUBSCRIBED } } });
    expect(await screen.findByTestId("billing-plan")).toHaveAttribute("data-plan", "pro");
    expect(screen.queryByRole("button", { name: "Manage subscription" })).toBeNull();
  });

  it("explains that Stripe is not set up, offers nothing, and fetches no invoices", async () => {
    const { calls } = open({ routes: { "GET /api/orgs/acme/billing": { body: billing({ configured: false }) } } });

    expect(await screen.findByText("Billing through Stripe is not set up on this server")).toBeInTheDocument();
    expect(screen.queryByRole("button")).toBeNull();
    expect(screen.queryByTestId("invoices")).toBeNull();
    expect(screen.queryByTestId("billing-plan")).toBeNull();
    expect(invoicesCalls(calls)).toHaveLength(0);
  });

  it("shows the server's refusal when billing is not for this role", async () => {
    open({
      role: "member",
      routes: {
        "GET /api/orgs/acme/billing": {
          status: 403,
          body: { detail: "Your role does not allow you to see billing.", code: "forbidden", fields: {} },
        },
      },
    });
    expect(await screen.findByRole("alert")).toHaveTextContent("Your role does not allow you to see billing.");
  });

  it("back from Checkout: says so, and asks again every 2 seconds until the subscription lands", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let state = billing();
    const { calls } = open({
      path: "/?checkout=done",
      routes: { "GET /api/orgs/acme/billing": () => ({ body: state }) },
    });

    expect(await screen.findByText("Subscription started — it appears here once Stripe confirms it")).toBeInTheDocument();
    expect(await screen.findByTestId("billing-waiting")).toBeInTheDocument();
    const before = billingCalls(calls).length;

    await act(() => vi.advanceTimersByTimeAsync(POLL_MS));
    await vi.waitFor(() => expect(billingCalls(calls).length).toBe(before + 1));
    expect(screen.getByTestId("billing-plan")).toHaveAttribute("data-plan", "free");

    // Stripe's webhook lands.
    state = SUBSCRIBED;
    await act(() => vi.advanceTimersByTimeAsync(POLL_MS));
    await vi.waitFor(() => expect(screen.getByTestId("billing-plan")).toHaveAttribute("data-plan", "pro"));
    expect(screen.getByTestId("billing-plan")).toHaveAttribute("data-status", "active");
    expect(screen.queryByTestId("billing-waiting")).toBeNull();
    // The invoices are fetched again for the new subscription.
    await vi.waitFor(() => expect(invoicesCalls(calls)).toHaveLength(2));

    // And the polling stops.
    const made = billingCalls(calls).length;
    await act(() => vi.advanceTimersByTimeAsync(POLL_MS * 5));
    expect(billingCalls(calls).length).toBe(made);
  });

  it("back from Checkout: gives up asking after about 30 seconds", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const { calls } = open({ path: "/?checkout=done" });
    await screen.findByTestId("billing-waiting");
    const before = billingCalls(calls).length;

    for (let elapsed = 0; elapsed < POLL_FOR_MS + POLL_MS * 3; elapsed += POLL_MS) {
      await act(() => vi.advanceTimersByTimeAsync(POLL_MS));
    }
    const polled = billingCalls(calls).length - before;
    expect(polled).toBe(POLL_FOR_MS / POLL_MS);
    expect(screen.queryByTestId("billing-waiting")).toBeNull();
    expect(screen.getByTestId("billing-unconfirmed")).toHaveTextContent("Stripe has not confirmed the subscription yet");
  });

  it("back from a cancelled Checkout: says so and does not poll", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const { calls } = open({ path: "/?checkout=cancelled" });

    expect(await screen.findByText("Checkout cancelled: nothing was charged.")).toBeInTheDocument();
    await screen.findByTestId("billing-plan");
    const made = billingCalls(calls).length;
    await act(() => vi.advanceTimersByTimeAsync(POLL_MS * 3));
    expect(billingCalls(calls).length).toBe(made);
    expect(screen.queryByTestId("billing-waiting")).toBeNull();
  });
});
