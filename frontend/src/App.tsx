import { Suspense, lazy, type ReactNode } from "react";
import { Link, Navigate, Route, Routes, useParams, useSearchParams } from "react-router";
import { useAuth } from "./lib/auth";
import { homeSection } from "./lib/permissions";
import { Spinner } from "./components/ui";
import { AcceptInvitationPage } from "./pages/AcceptInvitation";
import { ApiKeysPage } from "./pages/ApiKeys";
import { AppPage, WorkspaceAppsPage } from "./pages/Apps";
import { AuditPage } from "./pages/Audit";
import { BillingPage } from "./pages/Billing";
import { InboxPage } from "./pages/Inbox";
import { InvitationsPage } from "./pages/Invitations";
import { LoginPage, safeNext } from "./pages/Login";
import { MembersPage } from "./pages/Members";
import { OrgLayout, RequireAuth, SectionGuard } from "./pages/OrgLayout";
import { ForgotPasswordPage, ResetPasswordPage } from "./pages/PasswordReset";
import { SignupPage } from "./pages/Signup";
import { VerifyEmailPage } from "./pages/VerifyEmail";
import { RunPage, WorkspaceRunsPage } from "./pages/Runs";
import { SecretsPage } from "./pages/Secrets";
import { WorkspaceDetailPage } from "./pages/WorkspaceDetail";
import { WorkspacesPage } from "./pages/Workspaces";
import { AuthLayout } from "./pages/AuthLayout";
import { useOrg } from "./lib/org";

// The costs page carries the chart library: loaded when first opened, in its own chunk.
const CostsPage = lazy(() => import("./pages/Costs").then((m) => ({ default: m.CostsPage })));
// The flow builder carries the canvas and form libraries: its own chunk too.
const FlowBuilderPage = lazy(() => import("./pages/FlowBuilder").then((m) => ({ default: m.FlowBuilderPage })));
// A published app's public page: outside the console, for visitors; its own chunk.
const MiniAppPage = lazy(() => import("./pages/MiniApp").then((m) => ({ default: m.MiniAppPage })));

/** `/`: the first organisation's home, or the login page. */
function Home() {
  const { me } = useAuth();
  if (me === undefined) return <Spinner />;
  if (me === null) return <Navigate to="/login" replace />;
  const first = me.organizations[0];
  if (!first) {
    return (
      <AuthLayout title="No organisation yet" lead="You are not a member of any organisation.">
        <p className="muted" style={{ textAlign: "center" }}>
          Ask someone to invite you, or <Link to="/signup">create a new organisation</Link> with another email.
        </p>
      </AuthLayout>
    );
  }
  return <Navigate to={`/orgs/${first.slug}/${homeSection(first.role)}`} replace />;
}

/** Visitors only: a signed-in user opening /login goes to the console. */
function GuestOnly({ children }: { children: ReactNode }) {
  const { me } = useAuth();
  const [params] = useSearchParams();
  if (me === undefined) return <Spinner />;
  if (me) return params.get("next") ? <Navigate to={safeNext(params.get("next"))} replace /> : <Home />;
  return <>{children}</>;
}

function OrgHome() {
  const { role } = useOrg();
  const { slug } = useParams();
  return <Navigate to={`/orgs/${slug}/${homeSection(role)}`} replace />;
}

function NotFound() {
  return (
    <AuthLayout title="Page not found" lead="There is nothing at this address.">
      <Link className="btn btn-block" to="/">
        Go to the console
      </Link>
    </AuthLayout>
  );
}

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/" element={<Home />} />
      <Route path="/login" element={<GuestOnly><LoginPage /></GuestOnly>} />
      <Route path="/signup" element={<GuestOnly><SignupPage /></GuestOnly>} />
      <Route path="/forgot-password" element={<ForgotPasswordPage />} />
      <Route path="/reset-password" element={<ResetPasswordPage />} />
      <Route path="/verify-email" element={<VerifyEmailPage />} />
      <Route path="/invitations/:token" element={<AcceptInvitationPage />} />
      <Route path="/apps/:org/:slug" element={<Suspense fallback={<Spinner />}><MiniAppPage /></Suspense>} />
      <Route
        path="/orgs/:slug"
        element={
          <RequireAuth>
            <OrgLayout />
          </RequireAuth>
        }
      >
        <Route index element={<OrgHome />} />
        <Route path="workspaces" element={<SectionGuard section="workspaces"><WorkspacesPage /></SectionGuard>} />
        <Route path="workspaces/:wsId" element={<SectionGuard section="workspaces"><WorkspaceDetailPage /></SectionGuard>} />
        <Route path="workspaces/:wsId/flows/:flowId" element={<SectionGuard section="workspaces"><Suspense fallback={<Spinner />}><FlowBuilderPage /></Suspense></SectionGuard>} />
        <Route path="workspaces/:wsId/runs" element={<SectionGuard section="workspaces"><WorkspaceRunsPage /></SectionGuard>} />
        <Route path="workspaces/:wsId/runs/:runId" element={<SectionGuard section="workspaces"><RunPage /></SectionGuard>} />
        <Route path="workspaces/:wsId/apps" element={<SectionGuard section="workspaces"><WorkspaceAppsPage /></SectionGuard>} />
        <Route path="workspaces/:wsId/apps/:appId" element={<SectionGuard section="workspaces"><AppPage /></SectionGuard>} />
        <Route path="inbox" element={<InboxPage />} />
        <Route path="members" element={<SectionGuard section="members"><MembersPage /></SectionGuard>} />
        <Route path="invitations" element={<SectionGuard section="invitations"><InvitationsPage /></SectionGuard>} />
        <Route path="audit" element={<SectionGuard section="audit"><AuditPage /></SectionGuard>} />
        <Route path="api-keys" element={<SectionGuard section="api-keys"><ApiKeysPage /></SectionGuard>} />
        <Route path="secrets" element={<SectionGuard section="secrets"><SecretsPage /></SectionGuard>} />
        <Route path="costs" element={<SectionGuard section="costs"><Suspense fallback={<Spinner />}><CostsPage /></Suspense></SectionGuard>} />
        <Route path="billing" element={<SectionGuard section="billing"><BillingPage /></SectionGuard>} />
        <Route path="*" element={<NotFound />} />
      </Route>
      <Route path="*" element={<NotFound />} />
    </Routes>
  );
}
