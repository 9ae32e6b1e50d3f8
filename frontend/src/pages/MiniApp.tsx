/**
 * The public page of a published app (`/apps/:org/:slug`, `?embed=1` inside a frame): its form,
 * the answer streaming in, the outputs, human steps as cards, and the visitor's own runs.
 * Works signed out; members are recognised by their session, partners by an app key.
 */
import { useCallback, useId, useMemo, useRef, useState, type FormEvent, type ReactNode, type Ref } from "react";
import { Link, useLocation, useParams, useSearchParams } from "react-router";
import { ApiError } from "../api/client";
import { Alert, Badge, Button, EmptyState, Spinner, formatDate, relativeTime } from "../components/ui";
import { useAsync, usePaged, type Paged } from "../lib/hooks";
import {
  JSON_EXAMPLE,
  RateLimitedError,
  appStreamUrl,
  authOf,
  getAppRun,
  initialValues,
  inputErrorsFromServer,
  inputLabel,
  isJsonInput,
  keepAppKey,
  keepVisitorToken,
  listAppRuns,
  openApp,
  rateLimitMessage,
  shownStatus,
  startAppRun,
  summariseInputs,
  toInputs,
  useAppRunStream,
  useSecondsLeft,
  type AppInput,
  type AppRun,
  type FormValues,
  type HumanStep,
  type PublicApp,
} from "../lib/miniapp";
import { messageNode } from "../lib/runs";
import { RunStatusBadge } from "./Runs";

const KEY_CODES = new Set(["app_key_required", "invalid_app_key", "invalid_key"]);

export function MiniAppPage() {
  const { org = "", slug = "" } = useParams();
  const [params] = useSearchParams();
  const embed = params.get("embed") === "1";
  const app = useAsync(() => openApp(org, slug), [org, slug]);

  const changeKey = (key: string | null) => {
    keepAppKey(org, slug, key);
    app.reload();
  };

  let body: ReactNode;
  if (app.loading && !app.data) body = <Spinner label="Opening the app" />;
  else if (app.error?.status === 404) body = <NoApp detail={app.error.detail} embed={embed} />;
  else if (app.error?.code === "sign_in_required") body = <SignInNeeded detail={app.error.detail} embed={embed} />;
  else if (app.error && KEY_CODES.has(app.error.code)) {
    body = <AppKeyForm org={org} slug={slug} error={app.error.code === "app_key_required" ? null : app.error.detail} onKey={changeKey} />;
  } else if (app.error || !app.data) body = <Alert>{app.error?.detail ?? "The app could not be opened."}</Alert>;
  else {
    body = (
      <AppView
        key={`${org}/${slug}`}
        app={app.data}
        embed={embed}
        onForgetKey={() => changeKey(null)}
        onVisitorLost={() => {
          keepVisitorToken(org, slug, null);
          app.reload();
        }}
      />
    );
  }

  return (
    <div className={embed ? "ma ma-embed" : "ma"} data-testid="miniapp">
      {embed ? null : (
        <header className="ma-top">
          <Link to="/" className="ma-brand">
            <span className="brand-mark" aria-hidden="true">
              ⚡
            </span>
            FireFlow
          </Link>
          {app.data ? <span className="muted">{app.data.org_name}</span> : null}
        </header>
      )}
      <main className="ma-main">{body}</main>
    </div>
  );
}

function NoApp({ detail, embed }: { detail: string; embed: boolean }) {
  return (
    <section className="card ma-notice" aria-labelledby="ma-no-app" data-testid="app-not-found">
      <div className="card-body">
        <h1 id="ma-no-app">No app here</h1>
        <p>{detail}</p>
        <p className="muted">Check the link you were given, or ask whoever shared it whether the app is still published.</p>
        {embed ? null : <Link to="/">Go to FireFlow</Link>}
      </div>
    </section>
  );
}

function SignInNeeded({ detail, embed }: { detail: string; embed: boolean }) {
  const location = useLocation();
  const next = location.pathname + location.search;
  return (
    <section className="card ma-notice" aria-labelledby="ma-sign-in" data-testid="app-sign-in">
      <div className="card-body stack">
        <h1 id="ma-sign-in">Sign in to use this app</h1>
        <p>{detail}</p>
        <div>
          {/* Inside a frame the session cookie may not reach us: sign in in a tab of its own. */}
          <Link
            className="btn btn-primary"
            to={`/login?next=${encodeURIComponent(next)}`}
            {...(embed ? { target: "_blank", rel: "noopener" } : {})}
          >
            Sign in
          </Link>
        </div>
      </div>
    </section>
  );
}

function AppKeyForm({
  org,
  slug,
  error,
  onKey,
}: {
  org: string;
  slug: string;
  error: string | null;
  onKey: (key: string) => void;
}) {
  const [key, setKey] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const id = useId();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const value = key.trim();
    if (!value.startsWith("ffa_")) {
      setProblem("An app key starts with ffa_: paste the whole key you were given.");
      return;
    }
    onKey(value);
  };
  const shown = problem ?? error;
  return (
    <section className="card ma-notice" aria-labelledby={`${id}-title`} data-testid="app-key-form">
      <form className="card-body stack" onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
        <h1 id={`${id}-title`}>This app needs an app key</h1>
        <p>
          The owners of <span className="mono">/apps/{org}/{slug}</span> give app keys to the people who may use it. The key
          is kept in this tab only.
        </p>
        <div className="field">
          <label htmlFor={id}>App key</label>
          <input
            id={id}
            className="input mono"
            value={key}
            onChange={(e) => setKey(e.target.value)}
            placeholder="ffa_…"
            autoComplete="off"
            spellCheck={false}
            aria-invalid={shown ? true : undefined}
            aria-describedby={shown ? `${id}-error` : undefined}
          />
          {shown ? (
            <span className="error" id={`${id}-error`} role="alert">
              {shown}
            </span>
          ) : null}
        </div>
        <div>
          <Button type="submit" variant="primary">
            Open the app
          </Button>
        </div>
      </form>
    </section>
  );
}

function VisitorLine({ app, onForgetKey }: { app: PublicApp; onForgetKey: () => void }) {
  if (app.visitor.kind === "member") {
    return <p className="muted small">Signed in as {app.visitor.email}: your runs are kept with your account.</p>;
  }
  if (app.visitor.kind === "key") {
    return (
      <p className="muted small row">
        Using an app key.
        <Button size="sm" variant="ghost" onClick={onForgetKey}>
          Forget the key
        </Button>
      </p>
    );
  }
  return <p className="muted small">Your runs are kept in this browser.</p>;
}

function AppView({
  app,
  embed,
  onForgetKey,
  onVisitorLost,
}: {
  app: PublicApp;
  embed: boolean;
  onForgetKey: () => void;
  onVisitorLost: () => void;
}) {
  const org = app.org_slug;
  const slug = app.slug;
  const [values, setValues] = useState<FormValues>(() => initialValues(app.inputs));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [limited, setLimited] = useState<{ detail: string; until: number } | null>(null);
  const secondsLeft = useSecondsLeft(limited?.until ?? null);
  const [current, setCurrent] = useState<string | null>(null);
  const names = useMemo(() => app.inputs.map((i) => i.name), [app.inputs]);
  const runView = useRef<HTMLElement>(null);

  const runs = usePaged<AppRun>((cursor) => listAppRuns(org, slug, cursor), [org, slug]);
  const reloadRuns = runs.reload;
  const show = (runId: string) => {
    setCurrent(runId);
    window.setTimeout(() => runView.current?.scrollIntoView?.({ block: "nearest" }), 0);
  };

  const run = async (event: FormEvent) => {
    event.preventDefault();
    const form = toInputs(app.inputs, values);
    setErrors(form.errors);
    const bad = Object.keys(form.errors).length;
    if (bad > 0) {
      setFormError(`Please correct the highlighted field${bad > 1 ? "s" : ""}.`);
      return;
    }
    setFormError(null);
    setBusy(true);
    try {
      const started = await startAppRun(org, slug, form.inputs);
      setLimited(null);
      show(started.id);
      reloadRuns();
    } catch (err) {
      if (err instanceof RateLimitedError) {
        setLimited({ detail: err.detail, until: Date.now() + err.retryAfter * 1000 });
      } else if (err instanceof ApiError && err.code === "visitor_token_required") {
        onVisitorLost();
      } else if (err instanceof ApiError && Object.keys(err.fields).length > 0) {
        const { byInput, other } = inputErrorsFromServer(err.fields, names);
        setErrors(byInput);
        setFormError(other.length > 0 ? other.join(" ") : "Please correct the highlighted fields.");
      } else {
        setFormError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  const setValue = (name: string, value: string | boolean) => {
    setValues((all) => ({ ...all, [name]: value }));
    setErrors((all) => {
      if (!(name in all)) return all;
      const rest = { ...all };
      delete rest[name];
      return rest;
    });
  };

  const waitMessage = limited ? rateLimitMessage(limited.detail, secondsLeft) : null;
  const formId = useId();

  return (
    <div className="ma-view">
      <header className="ma-header">
        <h1>{app.title}</h1>
        {app.description ? <p className="ma-description">{app.description}</p> : null}
        <p className="muted small">
          by <span data-testid="app-org">{app.org_name}</span>
        </p>
        {embed ? null : <VisitorLine app={app} onForgetKey={onForgetKey} />}
      </header>

      <section className="card" aria-labelledby={`${formId}-title`}>
        <div className="card-header">
          <div>
            <h2 id={`${formId}-title`}>Your request</h2>
            {app.inputs.some((i) => i.required) ? (
              <p>
                Fields marked <span className="ma-required">*</span> are required.
              </p>
            ) : null}
          </div>
        </div>
        <form className="card-body stack ma-form" onSubmit={run} noValidate aria-label="Your request">
          {formError ? <Alert testId="app-form-error">{formError}</Alert> : null}
          {app.inputs.length === 0 ? <p className="muted">This app needs no inputs: press Run.</p> : null}
          {app.inputs.map((input) => (
            <InputControl
              key={input.name}
              input={input}
              value={values[input.name] ?? ""}
              error={errors[input.name]}
              onChange={(value) => setValue(input.name, value)}
            />
          ))}
          {waitMessage ? (
            <div className="alert alert-warn" role="alert" data-testid="app-rate-limit">
              <div>{waitMessage}</div>
            </div>
          ) : null}
          <div className="row">
            <Button type="submit" variant="primary" busy={busy} disabled={secondsLeft > 0} data-testid="app-run-button">
              {secondsLeft > 0 ? `Run (wait ${secondsLeft} s)` : "Run"}
            </Button>
          </div>
        </form>
      </section>

      {current ? <RunView ref={runView} org={org} slug={slug} runId={current} onEnd={reloadRuns} /> : null}

      <YourRuns runs={runs} current={current} onShow={show} />
    </div>
  );
}

function InputControl({
  input,
  value,
  error,
  onChange,
}: {
  input: AppInput;
  value: string | boolean;
  error?: string;
  onChange: (value: string | boolean) => void;
}) {
  const id = useId();
  const label = inputLabel(input.name);
  const json = isJsonInput(input.type);
  const hint = [input.description, json ? jsonHint(input.type) : ""].filter(Boolean).join(" ");
  const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  const a11y = {
    id,
    name: input.name,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": described,
    "aria-required": input.required || undefined,
  };
  const mark = input.required ? (
    <span className="ma-required" aria-hidden="true">
      {" "}
      *
    </span>
  ) : null;

  if (input.type === "boolean") {
    return (
      <div className="field" data-testid={`app-input-${input.name}`}>
        <label className="checkbox" htmlFor={id}>
          <input type="checkbox" {...a11y} checked={value === true} onChange={(e) => onChange(e.target.checked)} />
          {label}
        </label>
        {hint ? <span className="hint" id={`${id}-hint`}>{hint}</span> : null}
        {error ? <span className="error" id={`${id}-error`} role="alert">{error}</span> : null}
      </div>
    );
  }
  const text = typeof value === "string" ? value : "";
  return (
    <div className="field" data-testid={`app-input-${input.name}`}>
      <label htmlFor={id}>
        {label}
        {mark}
        {json ? <span className="muted small"> (JSON)</span> : null}
      </label>
      {input.type === "number" ? (
        <input type="number" step="any" inputMode="decimal" className="input" {...a11y} value={text} onChange={(e) => onChange(e.target.value)} />
      ) : (
        <textarea
          className={json ? "input mono" : "input"}
          rows={json ? 5 : 3}
          spellCheck={!json}
          {...a11y}
          value={text}
          onChange={(e) => onChange(e.target.value)}
          onKeyDown={(e) => {
            // Ctrl/Cmd+Enter runs the app from a textarea.
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) e.currentTarget.form?.requestSubmit();
          }}
        />
      )}
      {hint ? <span className="hint" id={`${id}-hint`}>{hint}</span> : null}
      {error ? <span className="error" id={`${id}-error`} role="alert">{error}</span> : null}
    </div>
  );
}

function jsonHint(type: string): string {
  const example = JSON_EXAMPLE[type];
  return example ? `Written as JSON, like ${example}.` : "Written as JSON.";
}

function HumanStepCard({ step }: { step: HumanStep }) {
  const waiting = step.state === "waiting";
  return (
    <article
      className={waiting ? "ma-human is-waiting" : "ma-human"}
      data-testid="app-human-step"
      data-state={step.state}
      aria-label={waiting ? "Waiting for a person" : "Answered"}
    >
      <div className="row">
        <strong>{waiting ? "Waiting for a person" : "Answered"}</strong>
        {step.title ? <span>: {step.title}</span> : null}
        {!waiting && step.outcome ? <Badge tone={step.outcome === "approved" ? "success" : "muted"}>{step.outcome.replace("_", " ")}</Badge> : null}
      </div>
      {step.message ? <p className="small">{step.message}</p> : null}
      {waiting ? <p className="muted small">Someone who looks after this app will answer; the run goes on then.</p> : null}
    </article>
  );
}

/** The outputs object: text as text, anything else as formatted JSON. */
function Outputs({ outputs }: { outputs: Record<string, unknown> }) {
  const entries = Object.entries(outputs);
  if (entries.length === 0) return <p className="muted">The run finished without outputs.</p>;
  return (
    <dl className="ma-outputs" data-testid="app-outputs">
      {entries.map(([name, value]) => (
        <div key={name} data-output={name}>
          <dt>{inputLabel(name)}</dt>
          <dd>
            {typeof value === "string" ? (
              <p className="ma-output-text">{value}</p>
            ) : (
              <pre className="run-text">{JSON.stringify(value, null, 2)}</pre>
            )}
          </dd>
        </div>
      ))}
    </dl>
  );
}

function RunView({
  ref,
  org,
  slug,
  runId,
  onEnd,
}: {
  ref: Ref<HTMLElement>;
  org: string;
  slug: string;
  runId: string;
  onEnd: () => void;
}) {
  const detail = useAsync(() => getAppRun(org, slug, runId), [org, slug, runId]);
  const reloadDetail = detail.reload;
  const ended = useCallback(() => {
    reloadDetail();
    onEnd();
  }, [reloadDetail, onEnd]);
  const { live, humans } = useAppRunStream(appStreamUrl(org, slug, runId), authOf(org, slug), ended);
  const status = shownStatus(detail.data?.status, live);
  const error = live.error ?? detail.data?.error ?? null;
  const finished = live.phase === "finished" || detail.data?.status === "completed";
  const outputs = live.outputs ?? detail.data?.outputs ?? null;
  const streaming = live.messages.some((m) => m.open);
  const messages = live.messages.filter((m) => m.text !== "");

  return (
    <section className="card" aria-label="Answer" ref={ref} data-testid="app-run" data-run={runId}>
      <div className="card-header">
        <div>
          <h2>Answer</h2>
          <p>
            Run <span className="mono">{runId.slice(0, 8)}</span>
            {detail.data ? ` · started ${formatDate(detail.data.created_at)}` : ""}
          </p>
        </div>
        <RunStatusBadge status={status} testId="app-run-status" />
      </div>
      <div className="card-body stack">
        {live.connectionError ? <Alert kind="warn">{live.connectionError}</Alert> : null}
        {humans.length > 0 ? (
          <div className="stack" aria-label="Human steps">
            {humans.map((step, i) => (
              <HumanStepCard key={`${step.node}-${i}`} step={step} />
            ))}
          </div>
        ) : null}
        <div className="ma-answer" aria-live="polite" aria-busy={streaming || undefined} data-testid="app-answer">
          {messages.length === 0 && !finished && !error ? (
            <p className="muted">{live.phase === "connecting" ? "Starting…" : "Working on it…"}</p>
          ) : null}
          {messages.map((message) =>
            message.superseded ? (
              <p key={message.id} className="muted small" data-testid="app-answer-superseded">
                <span className="ma-superseded">{message.text}</span> (step {messageNode(message.id)} started over)
              </p>
            ) : (
              <p key={message.id} className="ma-answer-text" data-message-id={message.id}>
                {message.text}
                {message.open ? <span className="ma-caret" aria-hidden="true" /> : null}
              </p>
            ),
          )}
        </div>
        {error ? <Alert testId="app-run-error">{error}</Alert> : null}
        {!error && finished && outputs ? (
          <div className="stack">
            <h3 className="ma-subtitle">Outputs</h3>
            <Outputs outputs={outputs} />
          </div>
        ) : null}
      </div>
    </section>
  );
}

function YourRuns({
  runs,
  current,
  onShow,
}: {
  runs: Paged<AppRun>;
  current: string | null;
  onShow: (runId: string) => void;
}) {
  return (
    <section className="card" aria-label="Your runs">
      <div className="card-header">
        <div>
          <h2>Your runs</h2>
          <p>Open one to see its answer again.</p>
        </div>
        <Button size="sm" onClick={runs.reload}>
          Refresh
        </Button>
      </div>
      {runs.error ? (
        <div className="card-body">
          <Alert>{runs.error.detail}</Alert>
        </div>
      ) : runs.loading && runs.items.length === 0 ? (
        <Spinner />
      ) : runs.items.length === 0 ? (
        <EmptyState title="No runs yet">Fill in the form and press Run.</EmptyState>
      ) : (
        <ul className="ma-runs" data-testid="app-runs">
          {runs.items.map((run) => (
            <li key={run.id} data-testid="app-run-row" data-run={run.id} className={run.id === current ? "is-current" : undefined}>
              <button
                type="button"
                className="ma-run-button"
                onClick={() => onShow(run.id)}
                aria-current={run.id === current || undefined}
                aria-label={`Show run of ${formatDate(run.created_at)}`}
              >
                <RunStatusBadge status={run.status} />
                <span className="ma-run-inputs">{summariseInputs(run.inputs)}</span>
                <span className="muted small" title={formatDate(run.created_at)}>
                  {relativeTime(run.created_at)}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {runs.hasMore ? (
        <div className="table-foot">
          <Button size="sm" busy={runs.loadingMore} onClick={runs.loadMore}>
            Load more
          </Button>
        </div>
      ) : null}
    </section>
  );
}
