import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import { EmailField, NewPasswordField, PasswordField } from "../components/fields";
import { Alert, Button } from "../components/ui";
import { useSubmit } from "../lib/hooks";
import { AuthLayout } from "./AuthLayout";

export function ForgotPasswordPage() {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const submit = useSubmit();
  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const ok = await submit.run(async () => {
      await call(() => api.POST("/api/auth/password-reset", { body: { email } }));
    });
    setSent(ok);
  };
  return (
    <AuthLayout
      title="Reset your password"
      lead="We will mail you a link to choose a new one."
      footer={<Link to="/login">Back to log in</Link>}
    >
      {sent ? (
        <Alert kind="success">
          If an account exists for <strong>{email}</strong>, a reset link is on its way. It is valid for one hour.
        </Alert>
      ) : (
        <form className="stack" onSubmit={onSubmit} noValidate aria-label="Reset password">
          {submit.error ? <Alert>{submit.error}</Alert> : null}
          <EmailField value={email} onChange={(e) => setEmail(e.target.value)} error={submit.fields.email} />
          <Button type="submit" variant="primary" block busy={submit.busy}>
            Send reset link
          </Button>
        </form>
      )}
    </AuthLayout>
  );
}

export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const uid = params.get("uid") ?? "";
  const token = params.get("token") ?? "";
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [done, setDone] = useState(false);
  const [mismatch, setMismatch] = useState(false);
  const submit = useSubmit();

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setMismatch(password !== confirm);
    if (password !== confirm) return;
    const ok = await submit.run(async () => {
      await call(() => api.POST("/api/auth/password-reset/confirm", { body: { uid, token, password } }));
    });
    setDone(ok);
  };

  if (!uid || !token) {
    return (
      <AuthLayout title="Reset your password" footer={<Link to="/forgot-password">Ask for a new link</Link>}>
        <Alert>This reset link is incomplete. Open the link from the email again, or ask for a new one.</Alert>
      </AuthLayout>
    );
  }
  return (
    <AuthLayout title="Choose a new password" footer={<Link to="/login">Back to log in</Link>}>
      {done ? (
        <div className="stack">
          <Alert kind="success">Your password is changed. Log in with the new one.</Alert>
          <Link className="btn btn-primary btn-block" to="/login">
            Log in
          </Link>
        </div>
      ) : (
        <form className="stack" onSubmit={onSubmit} noValidate aria-label="Choose a new password">
          {submit.error ? <Alert>{submit.error}</Alert> : null}
          {submit.fields.token || submit.fields.uid ? (
            <p className="small" style={{ margin: 0 }}>
              <Link to="/forgot-password">Ask for a new reset link</Link>
            </p>
          ) : null}
          <NewPasswordField
            label="New password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            error={submit.fields.password}
          />
          <PasswordField
            label="Repeat the new password"
            name="confirm"
            autoComplete="new-password"
            value={confirm}
            onChange={(e) => setConfirm(e.target.value)}
            error={mismatch ? "The two passwords differ." : undefined}
          />
          <Button type="submit" variant="primary" block busy={submit.busy}>
            Set password
          </Button>
        </form>
      )}
    </AuthLayout>
  );
}
