/** The console's building blocks: buttons, fields, badges, dialogs, alerts, empty states. */
import {
  useEffect,
  useId,
  useRef,
  useState,
  type ButtonHTMLAttributes,
  type FormEvent,
  type InputHTMLAttributes,
  type ReactNode,
  type SelectHTMLAttributes,
} from "react";
import type { Submit } from "../lib/hooks";
import { useToast } from "./toast";

type Variant = "default" | "primary" | "danger" | "ghost" | "danger-ghost";

export function Button({
  variant = "default",
  size,
  block,
  busy,
  className,
  children,
  disabled,
  type = "button",
  ...rest
}: ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: Variant;
  size?: "sm";
  block?: boolean;
  busy?: boolean;
}) {
  const classes = [
    "btn",
    variant !== "default" && `btn-${variant}`,
    size === "sm" && "btn-sm",
    block && "btn-block",
    className,
  ]
    .filter(Boolean)
    .join(" ");
  return (
    <button type={type} className={classes} disabled={disabled || busy} aria-busy={busy || undefined} {...rest}>
      {busy ? <span className="spinner" aria-hidden="true" style={{ width: 14, height: 14 }} /> : null}
      {children}
    </button>
  );
}

interface FieldProps {
  label: string;
  error?: string;
  hint?: ReactNode;
  children: (props: { id: string; "aria-invalid"?: true; "aria-describedby"?: string }) => ReactNode;
}

/** A labelled control with its hint and its server-side error (from `fields`). */
export function Field({ label, error, hint, children }: FieldProps) {
  const id = useId();
  const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({
        id,
        "aria-invalid": error ? true : undefined,
        "aria-describedby": described || undefined,
      })}
      {hint ? (
        <span className="hint" id={`${id}-hint`}>
          {hint}
        </span>
      ) : null}
      {error ? (
        <span className="error" id={`${id}-error`} role="alert">
          {error}
        </span>
      ) : null}
    </div>
  );
}

export function TextField({
  label,
  error,
  hint,
  ...input
}: { label: string; error?: string; hint?: ReactNode } & InputHTMLAttributes<HTMLInputElement>) {
  return (
    <Field label={label} error={error} hint={hint}>
      {(a11y) => <input className="input" {...a11y} {...input} />}
    </Field>
  );
}

export function SelectField({
  label,
  error,
  hint,
  children,
  ...select
}: { label: string; error?: string; hint?: ReactNode } & SelectHTMLAttributes<HTMLSelectElement>) {
  return (
    <Field label={label} error={error} hint={hint}>
      {(a11y) => (
        <select className="select" {...a11y} {...select}>
          {children}
        </select>
      )}
    </Field>
  );
}

export function Alert({
  kind = "error",
  children,
  testId,
}: {
  kind?: "error" | "success" | "warn" | "info";
  children: ReactNode;
  testId?: string;
}) {
  return (
    <div className={`alert alert-${kind}`} role={kind === "error" ? "alert" : "status"} data-testid={testId}>
      <div>{children}</div>
    </div>
  );
}

export function Badge({ tone, children }: { tone?: string; children: ReactNode }) {
  return <span className={`badge${tone ? ` badge-${tone}` : ""}`}>{children}</span>;
}

export function RoleBadge({ role }: { role: string | null | undefined }) {
  if (!role) return <Badge tone="muted">none</Badge>;
  return <Badge tone={role === "member" ? undefined : role}>{role}</Badge>;
}

export function Spinner({ label = "Loading" }: { label?: string }) {
  return (
    <div className="center" role="status">
      <span className="spinner" aria-hidden="true" />
      <span className="sr-only">{label}</span>
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <h3>{title}</h3>
      {children ? <div>{children}</div> : null}
    </div>
  );
}

export function PageHeader({
  title,
  description,
  actions,
  breadcrumbs,
}: {
  title: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
  breadcrumbs?: ReactNode;
}) {
  return (
    <header className="page-header">
      <div>
        {breadcrumbs ? <div className="breadcrumbs">{breadcrumbs}</div> : null}
        <h1>{title}</h1>
        {description ? <p>{description}</p> : null}
      </div>
      {actions ? <div className="page-actions">{actions}</div> : null}
    </header>
  );
}

export function initials(nameOrEmail: string): string {
  const parts = nameOrEmail.replace(/@.*/, "").split(/[\s._-]+/).filter(Boolean);
  return ((parts[0]?.[0] ?? "?") + (parts[1]?.[0] ?? "")).toUpperCase();
}

/** A person in a table cell: avatar initials, name (marked "(you)" for the viewer) and email. */
export function PersonCell({ user, isMe }: { user: { name: string | null; email: string }; isMe: boolean }) {
  const label = user.name || user.email;
  return (
    <div className="cell-person">
      <span className="avatar" aria-hidden="true">
        {initials(label)}
      </span>
      <div>
        <div>
          {label}
          {isMe ? <span className="muted"> (you)</span> : null}
        </div>
        <div className="sub">{user.email}</div>
      </div>
    </div>
  );
}

/** `<option>`s for roles, each shown capitalised ("owner" -> "Owner"). */
export function RoleOptions({ roles }: { roles: readonly string[] }) {
  return (
    <>
      {roles.map((r) => (
        <option key={r} value={r}>
          {r[0]!.toUpperCase() + r.slice(1)}
        </option>
      ))}
    </>
  );
}

/** A modal dialog: focus moves in, Escape closes, focus returns to the opener. */
export function Dialog({
  title,
  description,
  onClose,
  children,
  footer,
  testId,
}: {
  title: string;
  description?: ReactNode;
  onClose: () => void;
  children?: ReactNode;
  footer?: ReactNode;
  testId?: string;
}) {
  const titleId = useId();
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>("input, select, textarea, button:not([data-close])");
    (first ?? ref.current)?.focus();
    return () => opener?.focus?.();
  }, []);
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") onClose();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="overlay" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        ref={ref}
        tabIndex={-1}
        data-testid={testId}
      >
        <div className="dialog-header">
          <h2 id={titleId}>{title}</h2>
          {description ? <p>{description}</p> : null}
        </div>
        {children ? <div className="dialog-body">{children}</div> : null}
        {footer ? <div className="dialog-footer">{footer}</div> : null}
      </div>
    </div>
  );
}

/** Ask before doing something that cannot be undone; shows the server's refusal inline. */
export function ConfirmDialog({
  title,
  description,
  confirmLabel,
  onConfirm,
  onClose,
  danger = true,
}: {
  title: string;
  description: ReactNode;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
  danger?: boolean;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <Dialog
      title={title}
      description={description}
      onClose={onClose}
      footer={
        <>
          <Button variant="ghost" onClick={onClose} data-close>
            Cancel
          </Button>
          <Button variant={danger ? "danger" : "primary"} busy={busy} onClick={confirm}>
            {confirmLabel}
          </Button>
        </>
      }
    >
      {error ? <Alert>{error}</Alert> : null}
    </Dialog>
  );
}

/**
 * A dialog holding one form: the server's error on top, the fields, then Cancel and the submit
 * button. The form is labelled by the dialog's title.
 */
export function FormDialog({
  title,
  description,
  onClose,
  onSubmit,
  submit,
  submitLabel,
  submitDisabled,
  children,
}: {
  title: string;
  description?: ReactNode;
  onClose: () => void;
  onSubmit: (event: FormEvent) => void;
  submit: Pick<Submit, "busy" | "error">;
  submitLabel: ReactNode;
  submitDisabled?: boolean;
  children: ReactNode;
}) {
  return (
    <Dialog title={title} description={description} onClose={onClose}>
      <form className="stack" onSubmit={onSubmit} noValidate aria-label={title}>
        {submit.error ? <Alert>{submit.error}</Alert> : null}
        {children}
        <div className="form-actions">
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" variant="primary" busy={submit.busy} disabled={submitDisabled}>
            {submitLabel}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

/** A read-only value with a copy button (invitation links, API keys). */
export function CopyField({ value, label, testId }: { value: string; label: string; testId?: string }) {
  const [copied, setCopied] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // Clipboard API unavailable (http, old browser): select the text for Ctrl+C instead.
      inputRef.current?.select();
      document.execCommand?.("copy");
    }
    setCopied(true);
    window.setTimeout(() => setCopied(false), 2000);
  };
  return (
    <div className="copy-field">
      <input
        ref={inputRef}
        className="input"
        readOnly
        value={value}
        aria-label={label}
        data-testid={testId}
        onFocus={(e) => e.currentTarget.select()}
      />
      <Button onClick={copy} aria-label={`Copy ${label.toLowerCase()}`}>
        {copied ? "Copied" : "Copy"}
      </Button>
    </div>
  );
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function relativeTime(value: string | null | undefined): string {
  if (!value) return "never";
  const seconds = Math.round((Date.now() - new Date(value).getTime()) / 1000);
  const abs = Math.abs(seconds);
  const fmt = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  if (abs < 60) return fmt.format(-seconds, "second");
  if (abs < 3600) return fmt.format(-Math.round(seconds / 60), "minute");
  if (abs < 86400) return fmt.format(-Math.round(seconds / 3600), "hour");
  if (abs < 86400 * 30) return fmt.format(-Math.round(seconds / 86400), "day");
  return formatDate(value);
}

/** A key shown this once (an API key, an app key): copy it now, FireFlow keeps only a hash. */
export function KeyShownOnceDialog({
  title,
  label,
  value,
  testId,
  secretTestId,
  onClose,
  children,
}: {
  title: string;
  label: string;
  value: string;
  testId: string;
  secretTestId: string;
  onClose: () => void;
  /** How programs use it. */
  children: ReactNode;
}) {
  return (
    <Dialog
      title={title}
      onClose={onClose}
      testId={testId}
      footer={
        <Button variant="primary" onClick={onClose}>
          I have stored it
        </Button>
      }
    >
      <div className="stack">
        <Alert kind="warn">
          This is the only time the key is shown. Store it in a secret manager now: FireFlow keeps only a hash and cannot
          show it again.
        </Alert>
        <CopyField value={value} label={label} testId={secretTestId} />
        <p className="small muted" style={{ margin: 0 }}>
          {children}
        </p>
      </div>
    </Dialog>
  );
}

/** Confirm revoking a key (an API key, an app key): programs using it are refused at once. */
export function RevokeKeyDialog({
  name,
  prefix,
  onClose,
  revoke,
}: {
  name: string;
  prefix: string;
  onClose: () => void;
  /** Revoke it (the dialog says so, and closes, when this resolves). */
  revoke: () => Promise<void>;
}) {
  const toast = useToast();
  return (
    <ConfirmDialog
      title={`Revoke ${name}?`}
      description={
        <>
          Programs using <code>{prefix}…</code> are refused from now on. This cannot be undone.
        </>
      }
      confirmLabel="Revoke key"
      onClose={onClose}
      onConfirm={async () => {
        await revoke();
        toast.success(`${name} revoked.`);
      }}
    />
  );
}
