import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import { EmailField, PasswordField } from "../components/fields";
import { Alert, Button } from "../components/ui";
import { useAuth } from "../lib/auth";
import { useSubmit } from "../lib/hooks";
import { AuthLayout } from "./AuthLayout";

/** Only follow `?next=` to a path of this site (no open redirect). */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function LoginPage() {
  const { setMe } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [email, setEmail] = useState(params.get("email") ?? "");
  const [password, setPassword] = useState("");
  const submit = useSubmit(["email", "password"]);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const me = await call(() => api.POST("/api/auth/login", { body: { email, password } }));
      setMe(me);
      navigate(safeNext(params.get("next")), { replace: true });
    });
  };

  return (
    <AuthLayout
      title="Log in to FireFlow"
      lead="Welcome back."
      footer={
        <>
          New here? <Link to="/signup">Create an organisation</Link>
        </>
      }
    >
      <form className="stack" onSubmit={onSubmit} noValidate aria-label="Log in">
        {submit.error ? <Alert testId="form-error">{submit.error}</Alert> : null}
        <EmailField value={email} onChange={(e) => setEmail(e.target.value)} error={submit.fields.email} />
        <PasswordField
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={submit.fields.password}
          hint={<Link to="/forgot-password">Forgot your password?</Link>}
        />
        <Button type="submit" variant="primary" block busy={submit.busy}>
          Log in
        </Button>
      </form>
    </AuthLayout>
  );
}
