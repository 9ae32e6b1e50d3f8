import { useEffect, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import { Alert, Spinner } from "../components/ui";
import { useAuth } from "../lib/auth";
import { AuthLayout } from "./AuthLayout";

export function VerifyEmailPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const { me, refresh } = useAuth();
  const [state, setState] = useState<{ status: "working" | "done" | "failed"; message?: string }>({
    status: token ? "working" : "failed",
    message: token ? undefined : "This verification link is incomplete.",
  });
  const started = useRef(false);

  useEffect(() => {
    if (!token || started.current) return;
    started.current = true; // the token is single-purpose: post it once, even in StrictMode
    call(() => api.POST("/api/auth/verify-email", { body: { token } })).then(
      () => {
        setState({ status: "done" });
        refresh().catch(() => undefined);
      },
      (err: Error) => setState({ status: "failed", message: err.message }),
    );
  }, [token, refresh]);

  return (
    <AuthLayout title="Verify your email">
      {state.status === "working" ? <Spinner label="Verifying" /> : null}
      {state.status === "done" ? (
        <div className="stack">
          <Alert kind="success">Your email address is verified. Thank you.</Alert>
          <Link className="btn btn-primary btn-block" to={me ? "/" : "/login"}>
            {me ? "Go to the console" : "Log in"}
          </Link>
        </div>
      ) : null}
      {state.status === "failed" ? (
        <div className="stack">
          <Alert>{state.message}</Alert>
          <p className="muted small">
            {me ? "Use “Resend” in the banner of the console to get a new link." : "Log in to ask for a new link."}
          </p>
          <Link className="btn btn-block" to={me ? "/" : "/login"}>
            {me ? "Go to the console" : "Log in"}
          </Link>
        </div>
      ) : null}
    </AuthLayout>
  );
}
