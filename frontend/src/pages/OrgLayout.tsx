import { useMemo, useState, type ReactNode } from "react";
import { Link, Navigate, NavLink, Outlet, useLocation, useNavigate, useParams } from "react-router";
import { api, call } from "../api/client";
import { Icon } from "../components/icons";
import { OrgSwitcher } from "../components/OrgSwitcher";
import { useToast } from "../components/toast";
import { Alert, Button, Spinner, initials } from "../components/ui";
import { useAuth } from "../lib/auth";
import { useAsync } from "../lib/hooks";
import { OrgContext, useOrg, type OrgState } from "../lib/org";
import { sectionsFor, type Section } from "../lib/permissions";

const SECTION_LABELS: Record<Section, { label: string }> = {
  workspaces: { label: "Workspaces" },
  members: { label: "Members" },
  invitations: { label: "Invitations" },
  audit: { label: "Audit log" },
  "api-keys": { label: "API keys" },
  secrets: { label: "Secrets" },
  costs: { label: "Costs" },
  billing: { label: "Billing" },
};

/** Signed-in pages: send visitors to the login page and bring them back afterwards. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { me } = useAuth();
  const location = useLocation();
  if (me === undefined) return <Spinner />;
  if (me === null) {
    const next = location.pathname + location.search;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  return <>{children}</>;
}

function VerifyBanner({ email }: { email: string }) {
  const toast = useToast();
  const [busy, setBusy] = useState(false);
  const resend = async () => {
    setBusy(true);
    try {
      await call(() => api.POST("/api/auth/verify-email/resend"));
      toast.success(`A new verification link is on its way to ${email}.`);
    } catch (err) {
      toast.error((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="banner" role="status" data-testid="verify-banner">
      <span aria-hidden="true">✉</span>
      <span className="grow">
        Please verify your email address: we sent a link to <strong>{email}</strong>.
      </span>
      <Button size="sm" onClick={resend} busy={busy}>
        Resend
      </Button>
    </div>
  );
}

export function OrgLayout() {
  const { slug = "" } = useParams();
  const { me, logout } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const toast = useToast();
  const org = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}", { params: { path: { org_slug: slug } } })),
    [slug],
  );
  // The inbox count follows navigation: answering on a page and moving on updates it.
  const inbox = useAsync(() => call(() => api.GET("/api/inbox")), [location.pathname]);
  const pending = inbox.data?.length ?? 0;
  const state = useMemo<OrgState | null>(
    () => (org.data ? { org: org.data, role: org.data.role ?? null, reload: org.reload } : null),
    [org.data, org.reload],
  );

  if (!me) return <Spinner />;
  if (org.loading && !state) return <Spinner label="Loading organisation" />;
  if (org.error || !state) {
    return (
      <main className="auth">
        <div className="auth-card stack">
          <Alert>{org.error?.detail ?? "Organisation not found."}</Alert>
          <Link className="btn" to="/">
            Go to your organisations
          </Link>
        </div>
      </main>
    );
  }

  const onLogout = async () => {
    try {
      await logout();
      navigate("/login", { replace: true });
    } catch (err) {
      toast.error((err as Error).message);
    }
  };

  return (
    <OrgContext.Provider value={state}>
      <div className="shell">
        <aside className="sidebar" aria-label="Main">
          <div className="brand">
            <span className="brand-mark" aria-hidden="true">
              ⚡
            </span>
            FireFlow
          </div>
          <OrgSwitcher me={me} current={state.org} />
          <nav className="nav" aria-label="You">
            <NavLink to={`/orgs/${slug}/inbox`}>
              <Icon name="inbox" />
              Inbox
              {pending > 0 ? (
                <span className="nav-count" data-testid="inbox-count">
                  {pending}
                </span>
              ) : null}
            </NavLink>
          </nav>
          <nav className="nav" aria-label="Organisation">
            <div className="nav-label">Organisation</div>
            {sectionsFor(state.role).map((section) => (
              <NavLink key={section} to={`/orgs/${slug}/${section}`}>
                <Icon name={section} />
                {SECTION_LABELS[section].label}
              </NavLink>
            ))}
          </nav>
          <div className="sidebar-foot">
            <div className="user-chip">
              <span className="avatar" aria-hidden="true">
                {initials(me.user.name || me.user.email)}
              </span>
              <div className="who">
                <div>{me.user.name || me.user.email}</div>
                <div className="email">{me.user.email}</div>
              </div>
            </div>
            <Button variant="ghost" size="sm" onClick={onLogout}>
              <Icon name="logout" size={14} /> Log out
            </Button>
          </div>
        </aside>
        <div className="main">
          {!me.user.email_verified ? <VerifyBanner email={me.user.email} /> : null}
          <main className="content" id="content">
            <Outlet />
          </main>
        </div>
      </div>
    </OrgContext.Provider>
  );
}

/** A section of the organisation; roles that do not see it get an explanation, not an error. */
export function SectionGuard({ section, children }: { section: Section; children: ReactNode }) {
  const { role, org } = useOrg();
  if (!sectionsFor(role).includes(section)) {
    return (
      <div className="card">
        <div className="card-body">
          <Alert kind="info">
            Your role in {org.name} ({role ?? "none"}) does not include {SECTION_LABELS[section].label.toLowerCase()}.
            Ask an owner or admin if you need it.
          </Alert>
        </div>
      </div>
    );
  }
  return <>{children}</>;
}
