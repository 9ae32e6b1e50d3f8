import { PageHeader } from "../components/ui";
import { useOrg } from "../lib/org";

export function BillingPage() {
  const { org } = useOrg();
  return (
    <>
      <PageHeader title="Billing" description={`Plans, invoices and usage for ${org.name}.`} />
      <section className="card">
        <div className="empty">
          <h3>Billing arrives soon</h3>
          <div>
            Usage-based billing through Stripe, invoices and spending budgets will appear here. Nothing is charged
            until then.
          </div>
        </div>
      </section>
    </>
  );
}
