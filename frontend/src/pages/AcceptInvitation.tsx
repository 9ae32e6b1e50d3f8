import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, call } from "../api/client";
import { NameField, NewPasswordField } from "../components/fields";
import { Alert, Button, RoleBadge, Spinner, TextField, formatDate } from "../components/ui";
import { useAuth } from "../lib/auth";
import { useAsync, useSubmit } from "../lib/hooks";
import { AuthLayout } from "./AuthLayout";

const CLOSED: Record<string, string> = {
  accepted: "This invitation has already been used.",
  revoked: "This invitation was revoked. Ask for a new one.",
  expired: "This invitation has expired. Ask for a new one.",
};

export function AcceptInvitationPage() {
  const { token = "" } = useParams();
  const { me, setMe, logout } = useAuth();
  const navigate = useNavigate();
  const preview = useAsync(
    () => call(() => api.GET("/api/invitations/{token}", { params: { path: { token } } })),
    [token],
  );
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const submit = useSubmit(["name", "password"]);
  const here = `/invitations/${encodeURIComponent(token)}`;

  if (preview.loading || me === undefined) {
    return (
      <AuthLayout title="Invitation">
        <Spinner />
      </AuthLayout>
    );
  }
  if (preview.error || !preview.data) {
    return (
      <AuthLayout title="Invitation" footer={<Link to="/">Go to FireFlow</Link>}>
        <Alert>{preview.error?.detail ?? "This invitation link is not valid."}</Alert>
      </AuthLayout>
    );
  }
  const invitation = preview.data;
  const forMe = me && me.user.email.toLowerCase() === invitation.email.toLowerCase();
  const goToOrg = () => navigate(`/orgs/${invitation.org_slug}/workspaces`, { replace: true });

  const accept = () =>
    submit.run(async () => {
      setMe(await call(() => api.POST("/api/invitations/{token}/accept", { params: { path: { token } } })));
      goToOrg();
    });

  const createAccount = (event: FormEvent) => {
    event.preventDefault();
    return submit.run(async () => {
      setMe(
        await call(() =>
          api.POST("/api/invitations/{token}/signup", {
            params: { path: { token } },
            body: { name, password },
          }),
        ),
      );
      goToOrg();
    });
  };

  const summary = (
    <div className="card" style={{ marginBottom: 16, boxShadow: "none" }}>
      <div className="card-body stack" style={{ gap: 6, padding: 14 }} data-testid="invitation-summary">
        <div>
          <strong>{invitation.invited_by ?? "Someone"}</strong> invited <strong>{invitation.email}</strong> to join{" "}
          <strong>{invitation.org_name}</strong> as <RoleBadge role={invitation.role} />
        </div>
        {invitation.workspace_name && invitation.workspace_role ? (
          <div className="small">
            with the <strong>{invitation.workspace_role}</strong> role on the workspace{" "}
            <strong>{invitation.workspace_name}</strong>
          </div>
        ) : null}
        <div className="muted small">Expires {formatDate(invitation.expires_at)}</div>
      </div>
    </div>
  );

  let body;
  if (invitation.status !== "open") {
    body = <Alert>{CLOSED[invitation.status] ?? "This invitation is no longer open."}</Alert>;
  } else if (forMe) {
    body = (
      <div className="stack">
        {submit.error ? <Alert>{submit.error}</Alert> : null}
        <Button variant="primary" block busy={submit.busy} onClick={accept}>
          Accept invitation
        </Button>
      </div>
    );
  } else if (me) {
    body = (
      <div className="stack">
        <Alert kind="warn">
          You are logged in as <strong>{me.user.email}</strong>, but this invitation is for{" "}
          <strong>{invitation.email}</strong>.
        </Alert>
        <Button block onClick={() => logout().catch(() => undefined)}>
          Log out and continue as {invitation.email}
        </Button>
      </div>
    );
  } else if (invitation.account_exists) {
    body = (
      <div className="stack">
        <p className="muted">An account for {invitation.email} exists. Log in to accept.</p>
        <Link
          className="btn btn-primary btn-block"
          to={`/login?next=${encodeURIComponent(here)}&email=${encodeURIComponent(invitation.email)}`}
        >
          Log in to accept
        </Link>
      </div>
    );
  } else {
    body = (
      <form className="stack" onSubmit={createAccount} noValidate aria-label="Create your account">
        {submit.error ? <Alert testId="form-error">{submit.error}</Alert> : null}
        <TextField label="Email" name="email" value={invitation.email} disabled readOnly />
        <NameField value={name} onChange={(e) => setName(e.target.value)} error={submit.fields.name} />
        <NewPasswordField
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={submit.fields.password}
        />
        <Button type="submit" variant="primary" block busy={submit.busy}>
          Create account and join
        </Button>
        <p className="small muted" style={{ textAlign: "center", margin: 0 }}>
          Have an account with this email?{" "}
          <Link to={`/login?next=${encodeURIComponent(here)}&email=${encodeURIComponent(invitation.email)}`}>Log in</Link>
        </p>
      </form>
    );
  }

  return (
    <AuthLayout title={`Join ${invitation.org_name}`}>
      {summary}
      {body}
    </AuthLayout>
  );
}
