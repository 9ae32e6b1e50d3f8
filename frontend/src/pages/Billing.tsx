/**
 * Billing: the organisation's plan and Stripe subscription, the plans on offer, and the
 * invoices. Subscribing goes through Stripe Checkout, changing or cancelling through Stripe's
 * billing portal: the page only asks the API for the address and sends the browser there.
 *
 * Owners and billing members subscribe and manage the subscription; admins only look.
 * Back from Checkout (?checkout=done) the subscription shows up once Stripe's webhook has
 * landed, so the page asks again every few seconds for a while.
 */
import { useEffect, useId, useRef, useState } from "react";
import { useSearchParams } from "react-router";
import { ApiError, api, call, type Schemas } from "../api/client";
import { DataTable } from "../components/DataTable";
import { useToast } from "../components/toast";
import { Alert, Badge, Button, EmptyState, PageHeader, Spinner } from "../components/ui";
import { useAsync, useSubmit } from "../lib/hooks";
import { formatMinor, formatUsd } from "../lib/money";
import { useOrg } from "../lib/org";
import { can } from "../lib/permissions";

type Billing = Schemas["BillingOut"];
type Plan = Schemas["PlanOut"];
type Invoice = Schemas["InvoiceOut"];

/** After Checkout: how often, and for how long, the page asks whether the subscription landed. */
export const POLL_MS = 2000;
export const POLL_FOR_MS = 30_000;

/** Subscription states in which the subscription's plan applies (as the API counts them). */
const LIVE_STATUSES = ["active", "trialing", "past_due"];
export const FREE_PLAN = "free";

export function isSubscribed(status: string | undefined): boolean {
  return status !== undefined && LIVE_STATUSES.includes(status);
}

/** Send the browser to Stripe (Checkout, the portal). */
function goTo(url: string) {
  window.location.assign(url);
}

function formatDay(value: string | null | undefined): string {
  if (!value) return "—";
  return new Date(value).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

const STATUS_TONES: Record<string, string> = {
  active: "success",
  trialing: "success",
  past_due: "warn",
  canceled: "muted",
};

function StatusBadge({ status }: { status: string }) {
  if (!status) return <Badge tone="muted">no subscription</Badge>;
  return <Badge tone={STATUS_TONES[status]}>{status.replace("_", " ")}</Badge>;
}

/**
 * Poll while `active`, every POLL_MS, at most POLL_FOR_MS. Returns whether it is still polling.
 */
function usePollWhile(active: boolean, poll: () => void): boolean {
  const [expired, setExpired] = useState(false);
  useEffect(() => {
    if (!active || expired) return;
    let left = Math.round(POLL_FOR_MS / POLL_MS);
    const id = window.setInterval(() => {
      poll();
      left -= 1;
      if (left <= 0) {
        window.clearInterval(id);
        setExpired(true);
      }
    }, POLL_MS);
    return () => window.clearInterval(id);
  }, [active, expired, poll]);
  return active && !expired;
}

export function BillingPage() {
  const { org, role } = useOrg();
  const toast = useToast();
  const manager = can.manageBilling(role);
  const path = { org_slug: org.slug };
  const [params, setParams] = useSearchParams();
  // What Stripe sent the browser back with, read once (the parameter is then dropped from the address).
  const [checkout] = useState(() => params.get("checkout"));
  const billing = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/billing", { params: { path } })),
    [org.slug],
  );

  const announced = useRef(false);
  useEffect(() => {
    if (announced.current || !checkout) return;
    announced.current = true;
    if (checkout === "done") toast.success("Subscription started — it appears here once Stripe confirms it");
    else if (checkout === "cancelled") toast.info("Checkout cancelled: nothing was charged.");
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        next.delete("checkout");
        return next;
      },
      { replace: true },
    );
  }, [checkout, toast, setParams]);

  const data = billing.data;
  const subscribed = isSubscribed(data?.subscription_status);
  const waiting = usePollWhile(checkout === "done" && data?.configured === true && !subscribed, billing.reload);
  const unconfirmed = checkout === "done" && data?.configured === true && !subscribed && !waiting;

  return (
    <>
      <PageHeader title="Billing" description={`Plans, the subscription and invoices for ${org.name}.`} />
      {data === undefined ? (
        <section className="card">
          {billing.error ? (
            <div className="card-body">
              <Alert>{billing.error.detail}</Alert>
            </div>
          ) : (
            <Spinner />
          )}
        </section>
      ) : !data.configured ? (
        <section className="card" data-testid="billing-unconfigured">
          <EmptyState title="Billing through Stripe is not set up on this server">
            Plans, subscriptions and invoices appear here once the operator configures Stripe. Until then nothing
            is charged; the costs page still shows what LLM calls cost and the budgets that cap them.
          </EmptyState>
        </section>
      ) : (
        <>
          {waiting || unconfirmed ? (
            <div style={{ marginBottom: 20 }}>
              {waiting ? (
                <Alert kind="info" testId="billing-waiting">
                  Waiting for Stripe to confirm the subscription…
                </Alert>
              ) : (
                <Alert kind="warn" testId="billing-unconfirmed">
                  Stripe has not confirmed the subscription yet. It appears here once it does: reload this page in a
                  minute.
                </Alert>
              )}
            </div>
          ) : null}
          <CurrentPlan billing={data} manager={manager} subscribed={subscribed} />
          <PlansSection billing={data} manager={manager} subscribed={subscribed} onConflict={billing.reload} />
          <InvoicesSection slug={org.slug} status={data.subscription_status} />
        </>
      )}
    </>
  );
}

/* ---- the current plan ---- */

function CurrentPlan({ billing, manager, subscribed }: { billing: Billing; manager: boolean; subscribed: boolean }) {
  const { org } = useOrg();
  const toast = useToast();
  const headingId = useId();
  const [opening, setOpening] = useState(false);
  const plan = billing.plan ?? billing.plans.find((p) => p.code === FREE_PLAN) ?? null;
  const status = billing.subscription_status;
  const ends = billing.cancel_at_period_end || status === "canceled";

  const openPortal = async () => {
    setOpening(true);
    try {
      const { url } = await call(() =>
        api.POST("/api/orgs/{org_slug}/billing/portal", { params: { path: { org_slug: org.slug } } }),
      );
      goTo(url);
    } catch (err) {
      toast.error((err as Error).message);
      setOpening(false);
    }
  };

  return (
    <section
      className="card"
      aria-labelledby={headingId}
      data-testid="billing-plan"
      data-plan={billing.plan?.code ?? FREE_PLAN}
      data-status={status}
    >
      <div className="card-header">
        <div>
          <h2 id={headingId}>
            Current plan: {plan?.name ?? "Free"} <StatusBadge status={status} />
          </h2>
          <p>
            {billing.current_period_end
              ? `${ends ? "Ends" : "Renews"} on ${formatDay(billing.current_period_end)}`
              : subscribed
                ? "Subscribed through Stripe"
                : "No paid subscription"}
            {billing.cancel_at_period_end ? " · cancels at period end" : ""}
          </p>
        </div>
        {manager && subscribed ? (
          <Button variant="primary" busy={opening} onClick={openPortal}>
            Manage subscription
          </Button>
        ) : null}
      </div>
      <div className="stat-grid card-body" style={{ margin: 0 }} role="group" aria-label="Plan limits">
        <div className="stat" data-testid="plan-included">
          <div className="stat-label">Included usage</div>
          <div className="stat-value">{plan ? formatUsd(plan.included_usage_micros) : "—"}</div>
        </div>
        <div className="stat" data-testid="plan-cap">
          <div className="stat-label">Spend cap</div>
          <div className="stat-value">
            {plan?.spend_cap_micros != null ? formatUsd(plan.spend_cap_micros) : "No cap"}
          </div>
        </div>
      </div>
      {status === "past_due" ? (
        <div className="card-body" style={{ paddingTop: 0 }}>
          <Alert kind="warn">
            The last payment failed. {manager ? "Update the payment method under Manage subscription." : ""}
          </Alert>
        </div>
      ) : null}
      {manager && subscribed ? (
        <p className="card-body small muted" style={{ margin: 0, paddingTop: 0 }}>
          Change the plan, the payment method or cancel in Stripe's billing portal.
        </p>
      ) : null}
    </section>
  );
}

/* ---- the plans ---- */

function PlansSection({
  billing,
  manager,
  subscribed,
  onConflict,
}: {
  billing: Billing;
  manager: boolean;
  subscribed: boolean;
  onConflict: () => void;
}) {
  const { org } = useOrg();
  const headingId = useId();
  const submit = useSubmit();
  const [choosing, setChoosing] = useState<string | null>(null);
  const current = billing.plan?.code ?? FREE_PLAN;

  const choose = async (plan: Plan) => {
    setChoosing(plan.code);
    const ok = await submit.run(async () => {
      try {
        const { url } = await call(() =>
          api.POST("/api/orgs/{org_slug}/billing/checkout", {
            params: { path: { org_slug: org.slug } },
            body: { plan: plan.code },
          }),
        );
        goTo(url);
      } catch (err) {
        // Subscribed in the meantime (another tab, another member): show what is true now.
        if (err instanceof ApiError && err.code === "subscribed") onConflict();
        throw err;
      }
    });
    // On success the browser is leaving for Stripe: the button stays busy until it does.
    if (!ok) setChoosing(null);
  };

  return (
    <section className="card" aria-labelledby={headingId} data-testid="plans">
      <div className="card-header">
        <div>
          <h2 id={headingId}>Plans</h2>
          <p>
            {!manager
              ? "Owners and billing members choose the plan."
              : subscribed
                ? "To switch plans, use Manage subscription."
                : "Usage beyond a plan's included amount is billed at cost, up to its spend cap."}
          </p>
        </div>
      </div>
      {submit.error ? (
        <div className="card-body" style={{ paddingBottom: 0 }}>
          <Alert>{submit.error}</Alert>
        </div>
      ) : null}
      <div className="cost-grid card-body" style={{ margin: 0 }}>
        {billing.plans.map((plan) => {
          const isCurrent = plan.code === current;
          const canChoose = manager && !subscribed && plan.monthly_price_cents > 0;
          return (
            <div className="card stat stack" key={plan.code} data-testid={`plan-${plan.code}`}>
              <div className="row">
                <h3 className="grow" style={{ fontSize: 15, fontWeight: 600 }}>
                  {plan.name}
                </h3>
                {isCurrent ? <Badge tone="success">Current</Badge> : null}
              </div>
              <div>
                <span className="stat-value">{formatMinor(plan.monthly_price_cents, "usd", { whole: true })}</span>
                <span className="muted"> / month</span>
              </div>
              {plan.description ? <p style={{ margin: 0 }}>{plan.description}</p> : null}
              <ul className="small muted" style={{ margin: 0, paddingLeft: 18 }}>
                <li>{formatUsd(plan.included_usage_micros)} of LLM usage included</li>
                <li>
                  {plan.spend_cap_micros != null ? `Spend capped at ${formatUsd(plan.spend_cap_micros)}` : "No spend cap"}
                </li>
              </ul>
              {canChoose ? (
                <div>
                  <Button
                    variant="primary"
                    busy={choosing === plan.code}
                    disabled={choosing !== null && choosing !== plan.code}
                    onClick={() => choose(plan)}
                  >
                    Choose {plan.name}
                  </Button>
                </div>
              ) : null}
            </div>
          );
        })}
      </div>
    </section>
  );
}

/* ---- invoices ---- */

function InvoiceStatus({ status }: { status: string }) {
  const tone = status === "paid" ? "success" : status === "open" ? "warn" : status === "uncollectible" ? "danger" : "muted";
  return <Badge tone={tone}>{status || "—"}</Badge>;
}

/** Mounted only when Stripe is configured; asks again when the subscription's status changes. */
function InvoicesSection({ slug, status }: { slug: string; status: string }) {
  const headingId = useId();
  const invoices = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/billing/invoices", { params: { path: { org_slug: slug } } })),
    [slug, status],
  );
  return (
    <section className="card" aria-labelledby={headingId} data-testid="invoices">
      <div className="card-header">
        <div>
          <h2 id={headingId}>Invoices</h2>
          <p>Issued by Stripe: the plan's price and the usage beyond what it includes.</p>
        </div>
      </div>
      {invoices.data !== undefined ? (
        invoices.data.length === 0 ? (
          <EmptyState title="No invoices yet">They appear here once Stripe issues the first one.</EmptyState>
        ) : (
          <DataTable className="table table-dense" columns={["Number", "Date", "Status", "Amount"]} actions>
            {invoices.data.map((invoice: Invoice) => (
              <tr key={invoice.id} data-testid={`invoice-${invoice.id}`}>
                <td className="mono">{invoice.number || invoice.id}</td>
                <td className="nowrap">{formatDay(invoice.created)}</td>
                <td>
                  <InvoiceStatus status={invoice.status} />
                </td>
                <td className="nowrap">{formatMinor(invoice.amount_due, invoice.currency)}</td>
                <td className="actions">
                  {invoice.hosted_invoice_url ? (
                    <a
                      href={invoice.hosted_invoice_url}
                      target="_blank"
                      rel="noreferrer"
                      aria-label={`View invoice ${invoice.number || invoice.id}`}
                    >
                      View
                    </a>
                  ) : null}
                </td>
              </tr>
            ))}
          </DataTable>
        )
      ) : invoices.error ? (
        <div className="card-body">
          <Alert>{invoices.error.detail}</Alert>
        </div>
      ) : (
        <Spinner />
      )}
    </section>
  );
}
