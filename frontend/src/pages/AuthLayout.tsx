import type { ReactNode } from "react";

export function AuthLayout({ title, lead, children, footer }: { title: string; lead?: ReactNode; children: ReactNode; footer?: ReactNode }) {
  return (
    <main className="auth">
      <div className="auth-card">
        <div className="auth-brand">
          <span className="brand-mark" aria-hidden="true">
            ⚡
          </span>
          FireFlow
        </div>
        <div className="card">
          <div className="card-body">
            <h1>{title}</h1>
            {lead ? <p className="lead">{lead}</p> : <div style={{ height: 16 }} />}
            {children}
          </div>
        </div>
        {footer ? <div className="auth-foot">{footer}</div> : null}
      </div>
    </main>
  );
}
