import { act, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { OrgRole, Schemas, Workspace } from "../api/client";
import { ME, installFakeFetch, type Recorded, type Reply } from "../test/fakeFetch";
import { renderPage } from "../test/render";
import { CostsPage, REFRESH_MS, formatUsd, parseThresholds, rangeOf } from "./Costs";

beforeEach(() => {
  document.cookie = "csrftoken=t; path=/";
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

type Costs = Schemas["CostsOut"];
type Budget = Schemas["BudgetOut"];
type KillSwitch = Schemas["KillSwitchOut"];

const WS: Workspace = { id: "ws-1", name: "Research", created_at: "2026-01-01T00:00:00Z", archived: false, role: "owner" };

function slice(key: string, label: string, cost_micros: number) {
  return { key, label, cost_micros, calls: 3, input_tokens: 1200, output_tokens: 300 };
}

function costs(total_micros = 12_345_678): Costs {
  return {
    start: "2026-03-01",
    end: "2026-03-30",
    total: { cost_micros: total_micros, calls: 1234, input_tokens: 456_789, output_tokens: 98_765 },
    series: [
      { day: "2026-03-29", cost_micros: 1_000_000, calls: 10 },
      { day: "2026-03-30", cost_micros: 0, calls: 0 },
    ],
    by_workspace: [slice("ws-1", "Research", 9_000_000)],
    by_flow: [slice("f-1", "Summariser", 1200)],
    by_user: [slice("u-1", "ada@example.com", 5_000_000)],
    by_model: [slice("openai/gpt-4o-mini", "openai/gpt-4o-mini", 2_500_000)],
  };
}

function budget(extra: Partial<Budget> = {}): Budget {
  return {
    id: "b-1",
    name: "Monthly cap",
    scope: "org",
    target_id: null,
    target_label: "the organisation",
    period: "month",
    limit_micros: 100_000_000,
    thresholds: [50, 80, 100],
    action: "block",
    enabled: true,
    period_start: "2026-03-01T00:00:00Z",
    period_end: "2026-04-01T00:00:00Z",
    spent_micros: 42_000_000,
    reserved_micros: 1_000_000,
    percent: 42,
    plan_cap: false,
    created_at: "2026-03-01T00:00:00Z",
    ...extra,
  };
}

function killSwitch(extra: Partial<KillSwitch> = {}): KillSwitch {
  return {
    id: "k-1",
    workspace_id: null,
    workspace_name: null,
    reason: "Runaway agent",
    pulled_by_email: "ada@example.com",
    pulled_at: "2026-03-30T10:00:00Z",
    runs_cancelled: 3,
    lifted_by_email: null,
    lifted_at: null,
    active: true,
    ...extra,
  };
}

function open({
  role = "owner",
  routes = {},
}: {
  role?: OrgRole;
  routes?: Record<string, Reply | ((request: Recorded) => Reply)>;
} = {}) {
  const fake = installFakeFetch({
    "GET /api/orgs/acme/costs": { body: costs() },
    "GET /api/orgs/acme/budgets": { body: [budget()] },
    "GET /api/orgs/acme/notifications": {
      body: [
        {
          id: 7,
          kind: "budget_threshold",
          title: "Monthly cap reached 80%",
          body: "$80.00 of $100.00 spent.",
          created_at: "2026-03-30T09:00:00Z",
        },
      ],
    },
    "GET /api/orgs/acme/kill-switches": { body: [] },
    "GET /api/orgs/acme/workspaces": { body: { results: [WS], next: null, previous: null } },
    "GET /api/orgs/acme/alert-webhooks": { body: [] },
    ...routes,
  });
  const view = renderPage(<CostsPage />, { role, me: ME });
  return { ...fake, ...view };
}

const budgetForm = () => within(screen.getByRole("form", { name: "New budget" }));

describe("money and inputs", () => {
  it("formats micro-dollars with 2 decimals, or 4 under a dollar", () => {
    expect(formatUsd(12_345_678)).toBe("$12.35");
    expect(formatUsd(1200)).toBe("$0.0012");
    expect(formatUsd(0)).toBe("$0.00");
    expect(formatUsd(1_234_000_000)).toBe("$1,234.00");
  });

  it("parses thresholds and computes date ranges", () => {
    expect(parseThresholds("50, 80,100")).toEqual([50, 80, 100]);
    expect(parseThresholds("")).toEqual([]);
    expect(parseThresholds("50, lots")).toBeNull();
    expect(rangeOf(7, new Date("2026-03-30T23:00:00Z"))).toEqual({ start: "2026-03-24", end: "2026-03-30" });
  });
});

describe("costs page", () => {
  it("shows the totals, the chart, the top spenders, a budget and the notifications", async () => {
    const { calls } = open();

    const chart = await screen.findByTestId("spend-chart");
    expect(chart).toHaveAttribute("data-total-micros", "12345678");
    expect(screen.getByTestId("cost-total-spend")).toHaveTextContent("$12.35");
    expect(screen.getByTestId("cost-total-calls")).toHaveTextContent("1,234");
    expect(screen.getByTestId("cost-total-input-tokens")).toHaveTextContent("456,789");
    expect(screen.getByTestId("cost-total-output-tokens")).toHaveTextContent("98,765");
    expect(screen.getByTestId("top-workspaces")).toHaveTextContent("Research");
    expect(screen.getByTestId("top-flows")).toHaveTextContent("$0.0012");
    expect(screen.getByTestId("top-members")).toHaveTextContent("ada@example.com");
    expect(screen.getByTestId("top-models")).toHaveTextContent("openai/gpt-4o-mini");

    const row = await screen.findByTestId("budget-Monthly cap");
    expect(row).toHaveTextContent("the organisation");
    expect(row).toHaveTextContent("$42.00 of $100.00");
    expect(row).toHaveTextContent("42%");
    expect(row).toHaveTextContent("50%, 80%, 100%");
    expect(within(row).getByRole("progressbar")).toHaveAttribute("aria-valuenow", "42");

    const notes = await screen.findByTestId("cost-notifications");
    expect(notes).toHaveTextContent("Monthly cap reached 80%");
    expect(notes).toHaveTextContent("$80.00 of $100.00 spent.");

    // The default range is the last 30 days.
    const get = calls.find((c) => c.path === "/api/orgs/acme/costs")!;
    const start = new Date(get.query.get("start")!);
    const end = new Date(get.query.get("end")!);
    expect((end.getTime() - start.getTime()) / 86_400_000).toBe(29);
  });

  it("asks for another range when one is picked", async () => {
    const { calls } = open();
    await screen.findByTestId("spend-chart");

    await userEvent.click(screen.getByRole("button", { name: "Last 7 days" }));

    await vi.waitFor(() => {
      const last = calls.filter((c) => c.path === "/api/orgs/acme/costs").at(-1)!;
      const days = (new Date(last.query.get("end")!).getTime() - new Date(last.query.get("start")!).getTime()) / 86_400_000;
      expect(days).toBe(6);
    });
    expect(screen.getByRole("button", { name: "Last 7 days" })).toHaveAttribute("aria-pressed", "true");
  });

  it("refreshes costs, budgets and notifications every 5 seconds, without a spinner, until it is left", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let total = 1_000_000;
    const { calls, unmount } = open({
      routes: { "GET /api/orgs/acme/costs": () => ({ body: costs(total) }) },
    });
    const chart = await screen.findByTestId("spend-chart");
    expect(chart).toHaveAttribute("data-total-micros", "1000000");
    const count = (path: string) => calls.filter((c) => c.path === path).length;
    const before = {
      budgets: count("/api/orgs/acme/budgets"),
      notifications: count("/api/orgs/acme/notifications"),
    };

    total = 2_500_000;
    await act(() => vi.advanceTimersByTimeAsync(REFRESH_MS));
    // The figures stay on screen while they refresh: no spinner.
    expect(screen.getByTestId("spend-chart")).toBeInTheDocument();
    expect(screen.queryByText("Loading")).toBeNull();

    await vi.waitFor(() => expect(screen.getByTestId("spend-chart")).toHaveAttribute("data-total-micros", "2500000"));
    expect(screen.getByTestId("cost-total-spend")).toHaveTextContent("$2.50");
    expect(count("/api/orgs/acme/budgets")).toBe(before.budgets + 1);
    expect(count("/api/orgs/acme/notifications")).toBe(before.notifications + 1);

    unmount();
    const made = calls.length;
    await vi.advanceTimersByTimeAsync(REFRESH_MS * 3);
    expect(calls.length).toBe(made);
  });

  it("creates a budget: posts the limit as typed and the thresholds as numbers", async () => {
    const { calls } = open({
      routes: {
        "POST /api/orgs/acme/budgets": (request) => ({
          status: 201,
          body: budget({ id: "b-2", name: (request.body as { name: string }).name, scope: "workspace" }),
        }),
      },
    });
    await screen.findByTestId("budget-Monthly cap");

    await userEvent.type(budgetForm().getByLabelText("Name"), "Research cap");
    await userEvent.selectOptions(budgetForm().getByLabelText("Scope"), "workspace");
    await userEvent.selectOptions(budgetForm().getByLabelText("Workspace"), "ws-1");
    await userEvent.selectOptions(budgetForm().getByLabelText("Period"), "week");
    await userEvent.type(budgetForm().getByLabelText("Limit (USD)"), "25.50");
    expect(budgetForm().getByLabelText("Alert at (% of limit)")).toHaveValue("50, 80, 100");
    expect(budgetForm().getByLabelText("At the limit")).toHaveValue("block");
    await userEvent.selectOptions(budgetForm().getByLabelText("At the limit"), "pause");
    await userEvent.click(budgetForm().getByRole("button", { name: "Create budget" }));

    await vi.waitFor(() => expect(calls.some((c) => c.method === "POST")).toBe(true));
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe("/api/orgs/acme/budgets");
    expect(post.body).toEqual({
      name: "Research cap",
      scope: "workspace",
      workspace_id: "ws-1",
      period: "week",
      limit_usd: "25.50",
      thresholds: [50, 80, 100],
      action: "pause",
    });
    expect(await screen.findByText("Budget Research cap set.")).toBeInTheDocument();
  });

  it("creates a mini-app budget: picks the app among the workspace's apps and posts its app_id", async () => {
    const { calls } = open({
      routes: {
        "GET /api/orgs/acme/workspaces/ws-1/apps": {
          body: [{ id: "a-1", title: "Support bot", slug: "support-bot" }],
        },
        "POST /api/orgs/acme/budgets": (request) => ({
          status: 201,
          body: budget({ id: "b-3", name: (request.body as { name: string }).name, scope: "app" }),
        }),
      },
    });
    await screen.findByTestId("budget-Monthly cap");

    await userEvent.type(budgetForm().getByLabelText("Name"), "Support bot cap");
    await userEvent.selectOptions(budgetForm().getByLabelText("Scope"), "app");
    expect(budgetForm().getByLabelText("Mini-app")).toBeDisabled();
    await userEvent.selectOptions(budgetForm().getByLabelText("Workspace"), "ws-1");
    const picker = budgetForm().getByLabelText("Mini-app");
    await within(picker).findByRole("option", { name: "Support bot (/apps/acme/support-bot)" });
    await userEvent.selectOptions(picker, "a-1");
    await userEvent.type(budgetForm().getByLabelText("Limit (USD)"), "5");
    await userEvent.click(budgetForm().getByRole("button", { name: "Create budget" }));

    expect(await screen.findByText("Budget Support bot cap set.")).toBeInTheDocument();
    expect(calls.find((c) => c.method === "POST")!.body).toEqual({
      name: "Support bot cap",
      scope: "app",
      app_id: "a-1",
      period: "month",
      limit_usd: "5",
      thresholds: [50, 80, 100],
      action: "block",
    });
  });

  it("shows the server's field errors (422) beside the budget inputs", async () => {
    const { calls } = open({
      routes: {
        "POST /api/orgs/acme/budgets": {
          status: 422,
          body: {
            detail: "The budget was not set: limit_usd: must be greater than 0",
            code: "invalid",
            fields: { limit_usd: "must be greater than 0", "thresholds.1": "at most 100" },
          },
        },
      },
    });
    await screen.findByTestId("budget-Monthly cap");

    await userEvent.type(budgetForm().getByLabelText("Name"), "Zero");
    await userEvent.type(budgetForm().getByLabelText("Limit (USD)"), "0");
    const thresholds = budgetForm().getByLabelText("Alert at (% of limit)");
    await userEvent.clear(thresholds);
    await userEvent.type(thresholds, "10, 150");
    await userEvent.click(budgetForm().getByRole("button", { name: "Create budget" }));

    const limit = budgetForm().getByLabelText("Limit (USD)");
    await vi.waitFor(() => expect(limit).toHaveAttribute("aria-invalid", "true"));
    expect(limit).toHaveAccessibleDescription(expect.stringContaining("must be greater than 0"));
    expect(thresholds).toHaveAccessibleDescription(expect.stringContaining("at most 100"));
    expect(budgetForm().getByText("Please correct the highlighted fields.")).toBeInTheDocument();
    expect(calls.find((c) => c.method === "POST")!.body).toMatchObject({ limit_usd: "0", thresholds: [10, 150] });
  });

  it("refuses thresholds that are not whole percents without posting", async () => {
    const { calls } = open();
    await screen.findByTestId("budget-Monthly cap");

    await userEvent.type(budgetForm().getByLabelText("Name"), "Odd");
    await userEvent.type(budgetForm().getByLabelText("Limit (USD)"), "5");
    const thresholds = budgetForm().getByLabelText("Alert at (% of limit)");
    await userEvent.clear(thresholds);
    await userEvent.type(thresholds, "half");
    await userEvent.click(budgetForm().getByRole("button", { name: "Create budget" }));

    await vi.waitFor(() => expect(thresholds).toHaveAttribute("aria-invalid", "true"));
    expect(calls.some((c) => c.method === "POST")).toBe(false);
  });

  it("disables and deletes a budget (after confirming)", async () => {
    const { calls } = open({
      routes: {
        "PATCH /api/orgs/acme/budgets/b-1": { body: budget({ enabled: false }) },
        "DELETE /api/orgs/acme/budgets/b-1": { status: 204 },
      },
    });
    const row = await screen.findByTestId("budget-Monthly cap");

    await userEvent.click(within(row).getByRole("button", { name: "Disable Monthly cap" }));
    await vi.waitFor(() => expect(calls.find((c) => c.method === "PATCH")?.body).toEqual({ enabled: false }));
    expect(await within(screen.getByTestId("budget-Monthly cap")).findByText("disabled")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Delete Monthly cap" }));
    const dialog = within(screen.getByRole("dialog", { name: "Delete Monthly cap?" }));
    expect(calls.some((c) => c.method === "DELETE")).toBe(false);
    await userEvent.click(dialog.getByRole("button", { name: "Delete budget" }));
    await vi.waitFor(() => expect(calls.find((c) => c.method === "DELETE")?.path).toBe("/api/orgs/acme/budgets/b-1"));
  });

  it("shows the plan's spend cap without Disable or Delete: it follows the plan", async () => {
    open({
      routes: {
        "GET /api/orgs/acme/budgets": {
          body: [budget(), budget({ id: "b-cap", name: "Plan spend cap", plan_cap: true, thresholds: [80, 100] })],
        },
      },
    });
    const row = await screen.findByTestId("budget-Plan spend cap");
    expect(row).toHaveTextContent("Set by the plan");
    expect(within(row).queryByRole("button")).toBeNull();
    expect(within(screen.getByTestId("budget-Monthly cap")).getByRole("button", { name: "Delete Monthly cap" })).toBeInTheDocument();
  });

  it("billing members see budgets and the kill switch's status, but cannot change them", async () => {
    const { calls } = open({
      role: "billing",
      routes: { "GET /api/orgs/acme/kill-switches": { body: [killSwitch()] } },
    });

    expect(await screen.findByTestId("budget-Monthly cap")).toBeInTheDocument();
    expect(await screen.findByTestId("kill-switch-active")).toHaveTextContent(
      "Runs halted in the whole organisation: Runaway agent",
    );
    expect(screen.queryByRole("form", { name: "New budget" })).toBeNull();
    expect(screen.queryByRole("button", { name: /Pull kill switch/ })).toBeNull();
    expect(screen.queryByRole("button", { name: /Lift/ })).toBeNull();
    expect(screen.queryByRole("button", { name: /Disable|Delete/ })).toBeNull();
    expect(screen.queryByTestId("alert-webhooks")).toBeNull();
    expect(calls.some((c) => c.path.endsWith("/alert-webhooks"))).toBe(false);
    expect(screen.getByText("Only owners and admins create, change or delete budgets.")).toBeInTheDocument();
  });

  it("pulls the kill switch in a workspace after the confirm step, and says how many runs stopped", async () => {
    const { calls } = open({
      routes: {
        "POST /api/orgs/acme/kill-switches": (request) => ({
          status: 201,
          body: killSwitch({
            workspace_id: "ws-1",
            workspace_name: "Research",
            reason: (request.body as { reason: string }).reason,
            runs_cancelled: 4,
          }),
        }),
      },
    });
    const section = within(await screen.findByTestId("kill-switch"));
    await screen.findByTestId("kill-switch-clear");

    // A reason is required.
    await userEvent.click(section.getByRole("button", { name: "Pull kill switch" }));
    expect(section.getByLabelText("Reason")).toHaveAttribute("aria-invalid", "true");
    expect(screen.queryByRole("dialog")).toBeNull();

    await userEvent.selectOptions(section.getByLabelText("Where"), "ws-1");
    await userEvent.type(section.getByLabelText("Reason"), "Loop burning tokens");
    await userEvent.click(section.getByRole("button", { name: "Pull kill switch" }));

    const dialog = within(screen.getByRole("dialog", { name: "Pull the kill switch?" }));
    expect(dialog.getByText(/cancels every running run in Research/)).toBeInTheDocument();
    expect(calls.some((c) => c.method === "POST")).toBe(false);
    await userEvent.click(dialog.getByRole("button", { name: "Pull kill switch" }));

    expect(await screen.findByText("Kill switch pulled in Research: 4 runs cancelled.")).toBeInTheDocument();
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe("/api/orgs/acme/kill-switches");
    expect(post.body).toEqual({ workspace_id: "ws-1", reason: "Loop burning tokens" });
  });

  it("pulls the kill switch for the whole organisation with workspace_id null, and shows a refusal", async () => {
    const { calls } = open({
      routes: {
        "POST /api/orgs/acme/kill-switches": {
          status: 409,
          body: { detail: "A kill switch is already pulled there.", code: "kill_switch_pulled", fields: {} },
        },
      },
    });
    const section = within(await screen.findByTestId("kill-switch"));
    await userEvent.type(section.getByLabelText("Reason"), "Stop everything");
    await userEvent.click(section.getByRole("button", { name: "Pull kill switch" }));
    const dialog = within(screen.getByRole("dialog", { name: "Pull the kill switch?" }));
    expect(dialog.getByText(/the whole organisation/)).toBeInTheDocument();
    await userEvent.click(dialog.getByRole("button", { name: "Pull kill switch" }));

    expect(await dialog.findByRole("alert")).toHaveTextContent("A kill switch is already pulled there.");
    expect(calls.find((c) => c.method === "POST")!.body).toEqual({ workspace_id: null, reason: "Stop everything" });
  });

  it("lifts an active kill switch", async () => {
    let lifted = false;
    const { calls } = open({
      routes: {
        "GET /api/orgs/acme/kill-switches": () => ({ body: [killSwitch({ active: !lifted })] }),
        "POST /api/orgs/acme/kill-switches/k-1/lift": () => {
          lifted = true;
          return { body: killSwitch({ active: false }) };
        },
      },
    });
    const banner = await screen.findByTestId("kill-switch-active");
    await userEvent.click(within(banner).getByRole("button", { name: /Lift/ }));

    expect(await screen.findByTestId("kill-switch-clear")).toBeInTheDocument();
    expect(calls.some((c) => c.method === "POST" && c.path === "/api/orgs/acme/kill-switches/k-1/lift")).toBe(true);
  });

  it("adds an alert webhook and shows its secret once", async () => {
    let hooks: Schemas["WebhookOut"][] = [];
    const { calls } = open({
      routes: {
        "GET /api/orgs/acme/alert-webhooks": () => ({ body: hooks }),
        "POST /api/orgs/acme/alert-webhooks": (request) => {
          const url = (request.body as { url: string }).url;
          hooks = [{ id: "h-1", url, enabled: true, created_at: "2026-03-30T00:00:00Z" }];
          return { status: 201, body: { ...hooks[0], secret: "whsec_abc123" } };
        },
      },
    });
    const section = within(await screen.findByTestId("alert-webhooks"));
    await section.findByText("No webhooks");

    await userEvent.type(section.getByLabelText("URL"), "https://hooks.example.com/ff");
    await userEvent.click(section.getByRole("button", { name: "Add webhook" }));

    expect(await section.findByLabelText("Signing secret")).toHaveValue("whsec_abc123");
    expect(section.getByTestId("webhook-secret")).toHaveTextContent("Fireflow-Signature");
    expect(await section.findByTestId("webhook-row")).toHaveTextContent("https://hooks.example.com/ff");
    expect(calls.find((c) => c.method === "POST")!.body).toEqual({ url: "https://hooks.example.com/ff" });
  });
});
