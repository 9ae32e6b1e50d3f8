/**
 * Costs: what the organisation's LLM calls cost (totals, a daily chart, the top spenders),
 * budgets with their progress, the latest cost notifications, the kill switch and the alert
 * webhooks. The figures refresh every few seconds while the page is open.
 *
 * Owners and admins manage budgets, the kill switch and webhooks; billing members watch.
 */
import { useCallback, useEffect, useId, useState, type FormEvent, type ReactNode } from "react";
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { ApiError, api, call, type Schemas, type Workspace } from "../api/client";
import { DataTable } from "../components/DataTable";
import { useToast } from "../components/toast";
import {
  Alert,
  Badge,
  Button,
  ConfirmDialog,
  CopyField,
  EmptyState,
  Field,
  PageHeader,
  SelectField,
  Spinner,
  TextField,
  formatDate,
  relativeTime,
} from "../components/ui";
import { useAsync, useSubmit, type Async } from "../lib/hooks";
import { formatUsd } from "../lib/money";
import { useOrg } from "../lib/org";
import { can } from "../lib/permissions";

type Costs = Schemas["CostsOut"];
type Slice = Schemas["Slice"];
type Budget = Schemas["BudgetOut"];
type BudgetIn = Schemas["BudgetIn"];
type KillSwitch = Schemas["KillSwitchOut"];
type Webhook = Schemas["WebhookOut"];
type WebhookCreated = Schemas["WebhookCreatedOut"];

/** How often the figures, budgets and notifications are fetched again. */
export const REFRESH_MS = 5000;
const RANGES = [7, 30, 90] as const;
type RangeDays = (typeof RANGES)[number];
const NO_WORKSPACES: Workspace[] = [];

// Micro-dollars as dollars; shared with the billing page (lib/money keeps recharts out of its bundle).
export { formatUsd };

function formatCount(value: number): string {
  return value.toLocaleString("en-US");
}

/** The last `days` days (UTC), today included, as the API's start and end dates. */
export function rangeOf(days: number, today = new Date()): { start: string; end: string } {
  const end = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()));
  const start = new Date(end.getTime() - (days - 1) * 86_400_000);
  const iso = (d: Date) => d.toISOString().slice(0, 10);
  return { start: iso(start), end: iso(end) };
}

/** "50, 80, 100" -> [50, 80, 100]; null when a part is not a whole number. */
export function parseThresholds(text: string): number[] | null {
  const parts = text
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const numbers = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  return numbers.some((n) => Number.isNaN(n)) ? null : numbers;
}

/** Validation errors on list items ("thresholds.0") belong to the list's input. */
function fieldsByInput(err: unknown): unknown {
  if (!(err instanceof ApiError)) return err;
  const fields: Record<string, string> = {};
  for (const [key, message] of Object.entries(err.fields)) {
    const input = key.split(".")[0] ?? key;
    fields[input] ??= message;
  }
  return new ApiError(err.status, err.detail, err.code, fields);
}

/** Call `refresh` every REFRESH_MS while mounted. */
function useRefresh(refresh: () => void) {
  useEffect(() => {
    const id = window.setInterval(refresh, REFRESH_MS);
    return () => window.clearInterval(id);
  }, [refresh]);
}

/**
 * What a live section shows: its data once loaded (kept while it refreshes, so nothing flickers),
 * the server's refusal if the first load failed, else a spinner.
 */
function Live<T>({ state, children }: { state: Async<T>; children: (data: T) => ReactNode }) {
  if (state.data !== undefined) return <>{children(state.data)}</>;
  if (state.error) {
    return (
      <div className="card-body">
        <Alert>{state.error.detail}</Alert>
      </div>
    );
  }
  return <Spinner />;
}

export function CostsPage() {
  const { org, role } = useOrg();
  const manager = can.manageCosts(role);
  const slug = org.slug;
  const path = { org_slug: slug };
  const [days, setDays] = useState<RangeDays>(30);

  const costs = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/costs", { params: { path, query: rangeOf(days) } })),
    [slug, days],
  );
  const budgets = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/budgets", { params: { path } })),
    [slug],
  );
  const notifications = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/notifications", { params: { path } })),
    [slug],
  );
  const switches = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/kill-switches", { params: { path } })),
    [slug],
  );
  // Pickers (budget targets, kill-switch scope) only for those who act.
  const workspaces = useAsync(
    () =>
      manager
        ? call(() =>
            api.GET("/api/orgs/{org_slug}/workspaces", { params: { path, query: { page_size: 200 } } }),
          ).then((page) => page.results)
        : Promise.resolve(NO_WORKSPACES),
    [slug, manager],
  );
  const { reload: reloadCosts } = costs;
  const { reload: reloadBudgets } = budgets;
  const { reload: reloadNotifications } = notifications;
  const { reload: reloadSwitches } = switches;
  useRefresh(
    useCallback(() => {
      reloadCosts();
      reloadBudgets();
      reloadNotifications();
      reloadSwitches();
    }, [reloadCosts, reloadBudgets, reloadNotifications, reloadSwitches]),
  );

  return (
    <>
      <PageHeader
        title="Costs"
        description={`What ${org.name}'s LLM calls cost, the budgets that cap them, and the kill switch.`}
        actions={
          <div className="row" role="group" aria-label="Range">
            {RANGES.map((n) => (
              <Button
                key={n}
                size="sm"
                variant={n === days ? "primary" : "default"}
                aria-pressed={n === days}
                onClick={() => setDays(n)}
              >
                Last {n} days
              </Button>
            ))}
          </div>
        }
      />
      <KillSwitchSection
        state={switches}
        manager={manager}
        workspaces={workspaces.data ?? NO_WORKSPACES}
      />
      <Live state={costs}>{(data) => <CostFigures costs={data} />}</Live>
      <BudgetsSection state={budgets} manager={manager} workspaces={workspaces.data ?? NO_WORKSPACES} />
      <NotificationsSection state={notifications} />
      {manager ? <WebhooksSection /> : null}
    </>
  );
}

/* ---- figures ---- */

function CostFigures({ costs }: { costs: Costs }) {
  const { total } = costs;
  const stats: [string, string, string][] = [
    ["Spend", formatUsd(total.cost_micros), "spend"],
    ["Calls", formatCount(total.calls), "calls"],
    ["Input tokens", formatCount(total.input_tokens), "input-tokens"],
    ["Output tokens", formatCount(total.output_tokens), "output-tokens"],
  ];
  const points = costs.series.map((p) => ({ day: p.day, usd: p.cost_micros / 1_000_000, calls: p.calls }));
  return (
    <>
      <div className="stat-grid" aria-label="Totals" role="group">
        {stats.map(([label, value, id]) => (
          <div className="card stat" key={id} data-testid={`cost-total-${id}`}>
            <div className="stat-label">{label}</div>
            <div className="stat-value">{value}</div>
          </div>
        ))}
      </div>
      <section className="card" aria-label="Daily spend">
        <div className="card-header">
          <div>
            <h2>Daily spend</h2>
            <p>
              {costs.start} to {costs.end} (UTC)
            </p>
          </div>
        </div>
        <div
          className="card-body chart-box"
          data-testid="spend-chart"
          data-total-micros={total.cost_micros}
          role="img"
          aria-label={`Daily spend from ${costs.start} to ${costs.end}: ${formatUsd(total.cost_micros)} in total`}
        >
          <ResponsiveContainer width="100%" height={220} initialDimension={{ width: 800, height: 220 }}>
            <BarChart data={points} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
              <CartesianGrid strokeDasharray="3 3" vertical={false} stroke="#e4e4e7" />
              <XAxis dataKey="day" tickFormatter={(d: string) => d.slice(5)} tick={{ fontSize: 11 }} minTickGap={16} />
              <YAxis
                tickFormatter={(v: number) => formatUsd(v * 1_000_000)}
                tick={{ fontSize: 11 }}
                width={72}
              />
              <Tooltip
                formatter={(value) => [formatUsd(Number(value) * 1_000_000), "Spend"]}
                labelFormatter={(label) => String(label)}
              />
              <Bar dataKey="usd" fill="#ea580c" radius={[3, 3, 0, 0]} isAnimationActive={false} />
            </BarChart>
          </ResponsiveContainer>
        </div>
      </section>
      <div className="cost-grid">
        <TopSpenders title="Top workspaces" rows={costs.by_workspace} testId="top-workspaces" />
        <TopSpenders title="Top flows" rows={costs.by_flow} testId="top-flows" />
        <TopSpenders title="Top members" rows={costs.by_user} testId="top-members" />
        <TopSpenders title="Top models" rows={costs.by_model} testId="top-models" />
      </div>
    </>
  );
}

function TopSpenders({ title, rows, testId }: { title: string; rows: Slice[]; testId: string }) {
  const headingId = useId();
  return (
    <section className="card" aria-labelledby={headingId} data-testid={testId}>
      <div className="card-header">
        <h2 id={headingId}>{title}</h2>
      </div>
      {rows.length === 0 ? (
        <p className="card-body small muted" style={{ margin: 0 }}>
          No spend in this range.
        </p>
      ) : (
        <DataTable className="table table-dense" columns={["Name", "Cost", "Calls", "Tokens in / out"]}>
          {rows.map((row) => (
            <tr key={row.key}>
              <td title={row.key}>{row.label}</td>
              <td className="nowrap">{formatUsd(row.cost_micros)}</td>
              <td>{formatCount(row.calls)}</td>
              <td className="nowrap small">
                {formatCount(row.input_tokens)} / {formatCount(row.output_tokens)}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

/* ---- budgets ---- */

function BudgetBar({ budget }: { budget: Budget }) {
  const limit = Math.max(budget.limit_micros, 1);
  const spent = Math.min(100, (budget.spent_micros / limit) * 100);
  const reserved = Math.min(100 - spent, (budget.reserved_micros / limit) * 100);
  const tone = budget.percent >= 100 ? " is-over" : budget.percent >= 80 ? " is-near" : "";
  return (
    <div>
      <div
        className={`budget-bar${tone}`}
        role="progressbar"
        aria-label={`${budget.name}: spent of limit`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(budget.percent)}
      >
        <span className="budget-bar-spent" style={{ width: `${spent}%` }} />
        <span className="budget-bar-reserved" style={{ width: `${reserved}%` }} />
      </div>
      <div className="small muted nowrap">
        {formatUsd(budget.spent_micros)} of {formatUsd(budget.limit_micros)}
        {budget.reserved_micros > 0 ? ` (+${formatUsd(budget.reserved_micros)} in flight)` : ""}
      </div>
    </div>
  );
}

function BudgetsSection({
  state,
  manager,
  workspaces,
}: {
  state: Async<Budget[]>;
  manager: boolean;
  workspaces: Workspace[];
}) {
  const { org } = useOrg();
  const toast = useToast();
  const headingId = useId();
  const [deleting, setDeleting] = useState<Budget | null>(null);
  const [toggling, setToggling] = useState<string | null>(null);

  const toggle = async (budget: Budget) => {
    setToggling(budget.id);
    try {
      const updated = await call(() =>
        api.PATCH("/api/orgs/{org_slug}/budgets/{budget_id}", {
          params: { path: { org_slug: org.slug, budget_id: budget.id } },
          body: { enabled: !budget.enabled },
        }),
      );
      state.setData((all) => all?.map((b) => (b.id === updated.id ? updated : b)));
      toast.success(`${updated.name} ${updated.enabled ? "enabled" : "disabled"}.`);
    } catch (err) {
      toast.error((err as Error).message);
    } finally {
      setToggling(null);
    }
  };

  return (
    <section className="card" aria-labelledby={headingId} data-testid="budgets">
      <div className="card-header">
        <div>
          <h2 id={headingId}>Budgets</h2>
          <p>At a budget's limit, LLM calls in its scope are refused until the next period.</p>
        </div>
      </div>
      <Live state={state}>
        {(budgets) =>
          budgets.length === 0 ? (
            <EmptyState title="No budgets yet">
              {manager ? "Set one below to cap spending." : "Owners and admins set budgets."}
            </EmptyState>
          ) : (
            <DataTable
              className="table table-dense"
              columns={["Name", "Covers", "Period", "Spent", "Percent", "Alerts at", "Status"]}
              actions={manager}
            >
              {budgets.map((budget) => (
                <tr key={budget.id} data-testid={`budget-${budget.name}`} className={budget.enabled ? undefined : "is-dim"}>
                  <td>{budget.name}</td>
                  <td className="small">{budget.target_label}</td>
                  <td className="small">{budget.period}</td>
                  <td style={{ minWidth: 180 }}>
                    <BudgetBar budget={budget} />
                  </td>
                  <td className="nowrap">{Math.round(budget.percent)}%</td>
                  <td className="small nowrap">{budget.thresholds.map((t) => `${t}%`).join(", ") || "—"}</td>
                  <td>
                    {budget.enabled ? <Badge tone="success">enabled</Badge> : <Badge tone="muted">disabled</Badge>}
                  </td>
                  {manager ? (
                    <td className="actions">
                      {budget.plan_cap ? (
                        // The plan's spend cap follows the plan: the server refuses to change it here.
                        <span className="small muted" title="Change the plan on the billing page to change this cap">
                          Set by the plan
                        </span>
                      ) : (
                        <>
                          <Button
                            size="sm"
                            busy={toggling === budget.id}
                            onClick={() => toggle(budget)}
                            aria-label={`${budget.enabled ? "Disable" : "Enable"} ${budget.name}`}
                          >
                            {budget.enabled ? "Disable" : "Enable"}
                          </Button>
                          <Button
                            size="sm"
                            variant="danger-ghost"
                            onClick={() => setDeleting(budget)}
                            aria-label={`Delete ${budget.name}`}
                          >
                            Delete
                          </Button>
                        </>
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </DataTable>
          )
        }
      </Live>
      <div className="card-body secrets-add">
        {manager ? (
          <NewBudgetForm workspaces={workspaces} onCreated={state.reload} />
        ) : (
          <p className="small muted" style={{ margin: 0 }}>
            Only owners and admins create, change or delete budgets.
          </p>
        )}
      </div>
      {deleting ? (
        <ConfirmDialog
          title={`Delete ${deleting.name}?`}
          description="Its limit stops applying at once. Spending already recorded stays in the figures."
          confirmLabel="Delete budget"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await call(() =>
              api.DELETE("/api/orgs/{org_slug}/budgets/{budget_id}", {
                params: { path: { org_slug: org.slug, budget_id: deleting.id } },
              }),
            );
            toast.success(`${deleting.name} deleted.`);
            state.reload();
          }}
        />
      ) : null}
    </section>
  );
}

const BUDGET_INPUTS = ["name", "scope", "workspace_id", "user_id", "flow_id", "app_id", "period", "limit_usd", "thresholds"];

function NewBudgetForm({ workspaces, onCreated }: { workspaces: Workspace[]; onCreated: () => void }) {
  const { org } = useOrg();
  const toast = useToast();
  const headingId = useId();
  const [name, setName] = useState("");
  const [scope, setScope] = useState<BudgetIn["scope"]>("org");
  const [workspaceId, setWorkspaceId] = useState("");
  const [userId, setUserId] = useState("");
  const [flowId, setFlowId] = useState("");
  const [appId, setAppId] = useState("");
  const [period, setPeriod] = useState<BudgetIn["period"]>("month");
  const [limit, setLimit] = useState("");
  const [thresholds, setThresholds] = useState("50, 80, 100");
  const [action, setAction] = useState<BudgetIn["action"]>("block");
  const submit = useSubmit(BUDGET_INPUTS);

  const members = useAsync(
    () =>
      scope === "user"
        ? call(() =>
            api.GET("/api/orgs/{org_slug}/members", {
              params: { path: { org_slug: org.slug }, query: { page_size: 100 } },
            }),
          ).then((page) => page.results)
        : Promise.resolve([]),
    [org.slug, scope === "user"],
  );
  const flows = useAsync(
    () =>
      scope === "flow" && workspaceId
        ? call(() =>
            api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/flows", {
              params: { path: { org_slug: org.slug, ws_id: workspaceId }, query: { page_size: 100 } },
            }),
          ).then((page) => page.results)
        : Promise.resolve([]),
    [org.slug, scope, workspaceId],
  );
  // Apps are listed per workspace: the workspace picker narrows them, as it does flows.
  const apps = useAsync(
    () =>
      scope === "app" && workspaceId
        ? call(() =>
            api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/apps", {
              params: { path: { org_slug: org.slug, ws_id: workspaceId } },
            }),
          )
        : Promise.resolve([]),
    [org.slug, scope, workspaceId],
  );

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const parsed = parseThresholds(thresholds);
      if (parsed === null) {
        throw new ApiError(422, "Please correct the highlighted field.", "invalid", {
          thresholds: "Whole percents, separated by commas (e.g. 50, 80, 100).",
        });
      }
      const body: BudgetIn = { name, scope, period, limit_usd: limit.trim(), thresholds: parsed, action };
      if (scope === "workspace") body.workspace_id = workspaceId || null;
      if (scope === "user") body.user_id = userId || null;
      if (scope === "flow") body.flow_id = flowId || null;
      if (scope === "app") body.app_id = appId || null;
      const created = await call(() =>
        api.POST("/api/orgs/{org_slug}/budgets", { params: { path: { org_slug: org.slug } }, body }),
      ).catch((err: unknown) => {
        throw fieldsByInput(err);
      });
      setName("");
      setLimit("");
      toast.success(`Budget ${created.name} set.`);
      onCreated();
    });
  };

  const workspacePicker = (
    <SelectField
      label="Workspace"
      name="workspace_id"
      value={workspaceId}
      onChange={(e) => {
        setWorkspaceId(e.target.value);
        setFlowId("");
        setAppId("");
      }}
      error={scope === "workspace" ? submit.fields.workspace_id : undefined}
    >
      <option value="">Choose a workspace</option>
      {workspaces.map((w) => (
        <option key={w.id} value={w.id}>
          {w.name}
        </option>
      ))}
    </SelectField>
  );

  return (
    <form className="stack" onSubmit={onSubmit} noValidate aria-labelledby={headingId}>
      <h3 id={headingId}>New budget</h3>
      {submit.error ? <Alert>{submit.error}</Alert> : null}
      <div className="form-grid">
        <TextField
          label="Name"
          name="name"
          required
          maxLength={100}
          autoComplete="off"
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={submit.fields.name}
        />
        <SelectField
          label="Scope"
          name="scope"
          value={scope}
          onChange={(e) => setScope(e.target.value as BudgetIn["scope"])}
          error={submit.fields.scope}
        >
          <option value="org">Whole organisation</option>
          <option value="workspace">A workspace</option>
          <option value="user">A member</option>
          <option value="flow">A flow</option>
          <option value="app">A mini-app</option>
        </SelectField>
        {scope === "workspace" || scope === "flow" || scope === "app" ? workspacePicker : null}
        {scope === "user" ? (
          <SelectField
            label="Member"
            name="user_id"
            value={userId}
            onChange={(e) => setUserId(e.target.value)}
            error={submit.fields.user_id}
          >
            <option value="">Choose a member</option>
            {(members.data ?? []).map((m) => (
              <option key={m.user.id} value={m.user.id}>
                {m.user.name ? `${m.user.name} (${m.user.email})` : m.user.email}
              </option>
            ))}
          </SelectField>
        ) : null}
        {scope === "flow" ? (
          <SelectField
            label="Flow"
            name="flow_id"
            value={flowId}
            onChange={(e) => setFlowId(e.target.value)}
            error={submit.fields.flow_id}
            disabled={!workspaceId}
          >
            <option value="">{workspaceId ? "Choose a flow" : "Choose a workspace first"}</option>
            {(flows.data ?? []).map((f) => (
              <option key={f.id} value={f.id}>
                {f.name}
              </option>
            ))}
          </SelectField>
        ) : null}
        {scope === "app" ? (
          <SelectField
            label="Mini-app"
            name="app_id"
            value={appId}
            onChange={(e) => setAppId(e.target.value)}
            error={submit.fields.app_id}
            disabled={!workspaceId}
            hint="Caps the LLM calls of its visitors' runs."
          >
            <option value="">{workspaceId ? "Choose a mini-app" : "Choose a workspace first"}</option>
            {(apps.data ?? []).map((a) => (
              <option key={a.id} value={a.id}>
                {a.title} (/apps/{org.slug}/{a.slug})
              </option>
            ))}
          </SelectField>
        ) : null}
        <SelectField
          label="Period"
          name="period"
          value={period}
          onChange={(e) => setPeriod(e.target.value as BudgetIn["period"])}
          error={submit.fields.period}
        >
          <option value="day">Day</option>
          <option value="week">Week</option>
          <option value="month">Month</option>
        </SelectField>
        <TextField
          label="Limit (USD)"
          name="limit_usd"
          required
          inputMode="decimal"
          autoComplete="off"
          placeholder="100.00"
          value={limit}
          onChange={(e) => setLimit(e.target.value)}
          error={submit.fields.limit_usd}
        />
        <TextField
          label="Alert at (% of limit)"
          name="thresholds"
          autoComplete="off"
          value={thresholds}
          onChange={(e) => setThresholds(e.target.value)}
          error={submit.fields.thresholds}
          hint="Comma-separated percents."
        />
        <SelectField
          label="At the limit"
          name="action"
          value={action}
          onChange={(e) => setAction(e.target.value as BudgetIn["action"])}
          error={submit.fields.action}
        >
          <option value="block">Refuse LLM calls</option>
          <option value="pause">Pause the run for an owner's approval</option>
        </SelectField>
      </div>
      <div className="form-actions">
        <Button type="submit" variant="primary" busy={submit.busy}>
          Create budget
        </Button>
      </div>
    </form>
  );
}

/* ---- notifications ---- */

function NotificationsSection({ state }: { state: Async<Schemas["NotificationOut"][]> }) {
  const headingId = useId();
  return (
    <section className="card" aria-labelledby={headingId}>
      <div className="card-header">
        <div>
          <h2 id={headingId}>Notifications</h2>
          <p>Budget thresholds reached, limits hit and kill switches, newest first.</p>
        </div>
      </div>
      <Live state={state}>
        {(items) =>
          items.length === 0 ? (
            <EmptyState title="Nothing to report">Alerts about spending will appear here.</EmptyState>
          ) : (
            <ul className="cost-notifications" data-testid="cost-notifications">
              {items.slice(0, 20).map((n) => (
                <li key={n.id}>
                  <div className="row">
                    <strong className="grow">{n.title}</strong>
                    <span className="small muted" title={formatDate(n.created_at)}>
                      {relativeTime(n.created_at)}
                    </span>
                  </div>
                  {n.body ? <div className="small">{n.body}</div> : null}
                </li>
              ))}
            </ul>
          )
        }
      </Live>
    </section>
  );
}

/* ---- kill switch ---- */

function switchScope(s: Pick<KillSwitch, "workspace_id" | "workspace_name">): string {
  return s.workspace_id ? (s.workspace_name ?? "a workspace") : "the whole organisation";
}

function KillSwitchSection({
  state,
  manager,
  workspaces,
}: {
  state: Async<KillSwitch[]>;
  manager: boolean;
  workspaces: Workspace[];
}) {
  const { org } = useOrg();
  const toast = useToast();
  const headingId = useId();
  const [lifting, setLifting] = useState<string | null>(null);
  const [target, setTarget] = useState("");
  const [reason, setReason] = useState("");
  const [reasonError, setReasonError] = useState<string | undefined>();
  const [confirming, setConfirming] = useState(false);
  const active = (state.data ?? []).filter((s) => s.active);
  const targetName = target ? (workspaces.find((w) => w.id === target)?.name ?? "this workspace") : "the whole organisation";

  const lift = async (s: KillSwitch) => {
    setLifting(s.id);
    try {
      await call(() =>
        api.POST("/api/orgs/{org_slug}/kill-switches/{switch_id}/lift", {
          params: { path: { org_slug: org.slug, switch_id: s.id } },
        }),
      );
      toast.success(`Runs may start again in ${switchScope(s)}.`);
      state.reload();
    } catch (err) {
      toast.error((err as Error).message);
    } finally {
      setLifting(null);
    }
  };

  const onPull = (event: FormEvent) => {
    event.preventDefault();
    if (!reason.trim()) {
      setReasonError("Say why: it is shown to everyone whose runs stop.");
      return;
    }
    setReasonError(undefined);
    setConfirming(true);
  };

  return (
    <section className="card" aria-labelledby={headingId} data-testid="kill-switch">
      <div className="card-header">
        <div>
          <h2 id={headingId}>Kill switch</h2>
          <p>Cancels every running run in a scope and refuses new ones until it is lifted.</p>
        </div>
      </div>
      <div className="card-body stack">
        {active.length > 0 ? (
          active.map((s) => (
            <div className="alert alert-error kill-banner" role="alert" key={s.id} data-testid="kill-switch-active">
              <div className="grow">
                <strong>
                  Runs halted in {switchScope(s)}: {s.reason}
                </strong>
                <div className="small">
                  Pulled {relativeTime(s.pulled_at)}
                  {s.pulled_by_email ? ` by ${s.pulled_by_email}` : ""} · {s.runs_cancelled}{" "}
                  {s.runs_cancelled === 1 ? "run" : "runs"} cancelled
                </div>
              </div>
              {manager ? (
                <Button
                  size="sm"
                  busy={lifting === s.id}
                  onClick={() => lift(s)}
                  aria-label={`Lift the kill switch in ${switchScope(s)}`}
                >
                  Lift
                </Button>
              ) : null}
            </div>
          ))
        ) : state.data ? (
          <p className="small muted" style={{ margin: 0 }} data-testid="kill-switch-clear">
            No kill switch is pulled: runs start normally.
          </p>
        ) : state.error ? (
          <Alert>{state.error.detail}</Alert>
        ) : null}
        {manager ? (
          <form className="stack" onSubmit={onPull} noValidate aria-label="Pull kill switch">
            <div className="form-grid">
              <SelectField label="Where" name="workspace_id" value={target} onChange={(e) => setTarget(e.target.value)}>
                <option value="">Whole organisation</option>
                {workspaces.map((w) => (
                  <option key={w.id} value={w.id}>
                    {w.name}
                  </option>
                ))}
              </SelectField>
              <Field label="Reason" error={reasonError}>
                {(a11y) => (
                  <input
                    className="input"
                    name="reason"
                    required
                    maxLength={500}
                    autoComplete="off"
                    value={reason}
                    onChange={(e) => setReason(e.target.value)}
                    {...a11y}
                  />
                )}
              </Field>
            </div>
            <div className="form-actions">
              <Button type="submit" variant="danger">
                Pull kill switch
              </Button>
            </div>
          </form>
        ) : (
          <p className="small muted" style={{ margin: 0 }}>
            Only owners and admins pull or lift the kill switch.
          </p>
        )}
      </div>
      {confirming ? (
        <ConfirmDialog
          title="Pull the kill switch?"
          description={
            <>
              This cancels every running run in {targetName} at once, and no new run starts there until the switch
              is lifted.
            </>
          }
          confirmLabel="Pull kill switch"
          onClose={() => setConfirming(false)}
          onConfirm={async () => {
            const pulled = await call(() =>
              api.POST("/api/orgs/{org_slug}/kill-switches", {
                params: { path: { org_slug: org.slug } },
                body: { workspace_id: target || null, reason: reason.trim() },
              }),
            );
            setReason("");
            toast.success(
              `Kill switch pulled in ${switchScope(pulled)}: ${pulled.runs_cancelled} ${
                pulled.runs_cancelled === 1 ? "run" : "runs"
              } cancelled.`,
            );
            state.reload();
          }}
        />
      ) : null}
    </section>
  );
}

/* ---- alert webhooks ---- */

function WebhooksSection() {
  const { org } = useOrg();
  const toast = useToast();
  const headingId = useId();
  const path = { org_slug: org.slug };
  const list = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/alert-webhooks", { params: { path } })),
    [org.slug],
  );
  const [url, setUrl] = useState("");
  const [created, setCreated] = useState<WebhookCreated | null>(null);
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const submit = useSubmit(["url"]);

  const onAdd = async (event: FormEvent) => {
    event.preventDefault();
    setCreated(null);
    await submit.run(async () => {
      const hook = await call(() => api.POST("/api/orgs/{org_slug}/alert-webhooks", { params: { path }, body: { url } }));
      setCreated(hook);
      setUrl("");
      list.reload();
    });
  };

  return (
    <section className="card" aria-labelledby={headingId} data-testid="alert-webhooks">
      <div className="card-header">
        <div>
          <h2 id={headingId}>Alert webhooks</h2>
          <p>Budget alerts and kill switches are also POSTed, signed, to these URLs.</p>
        </div>
      </div>
      {created ? (
        <div className="card-body stack secrets-key-rotated" data-testid="webhook-secret">
          <Alert kind="success">
            Webhook added. Copy its signing secret now: it is not shown again. Use it to verify the{" "}
            <code>Fireflow-Signature</code> header of each delivery.
          </Alert>
          <CopyField value={created.secret} label="Signing secret" />
        </div>
      ) : null}
      <Live state={list}>
        {(hooks) =>
          hooks.length === 0 ? (
            <EmptyState title="No webhooks">Add one below to get alerts in your own systems.</EmptyState>
          ) : (
            <DataTable className="table table-dense" columns={["URL", "Status", "Added"]} actions>
              {hooks.map((hook) => (
                <tr key={hook.id} data-testid="webhook-row">
                  <td className="mono">{hook.url}</td>
                  <td>{hook.enabled ? <Badge tone="success">enabled</Badge> : <Badge tone="muted">disabled</Badge>}</td>
                  <td className="small nowrap">{formatDate(hook.created_at)}</td>
                  <td className="actions">
                    <Button
                      size="sm"
                      variant="danger-ghost"
                      onClick={() => setDeleting(hook)}
                      aria-label={`Delete webhook ${hook.url}`}
                    >
                      Delete
                    </Button>
                  </td>
                </tr>
              ))}
            </DataTable>
          )
        }
      </Live>
      <div className="card-body secrets-add">
        <form className="stack" onSubmit={onAdd} noValidate aria-label="Add webhook">
          {submit.error ? <Alert>{submit.error}</Alert> : null}
          <div className="form-grid">
            <TextField
              label="URL"
              name="url"
              type="url"
              required
              placeholder="https://hooks.example.com/fireflow"
              value={url}
              onChange={(e) => setUrl(e.target.value)}
              error={submit.fields.url}
            />
          </div>
          <div className="form-actions">
            <Button type="submit" variant="primary" busy={submit.busy}>
              Add webhook
            </Button>
          </div>
        </form>
      </div>
      {deleting ? (
        <ConfirmDialog
          title="Delete this webhook?"
          description={
            <>
              <code>{deleting.url}</code> stops receiving alerts.
            </>
          }
          confirmLabel="Delete webhook"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await call(() =>
              api.DELETE("/api/orgs/{org_slug}/alert-webhooks/{webhook_id}", {
                params: { path: { ...path, webhook_id: deleting.id } },
              }),
            );
            toast.success("Webhook deleted.");
            list.reload();
          }}
        />
      ) : null}
    </section>
  );
}
