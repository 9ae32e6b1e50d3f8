/**
 * A workspace's apps (flows published at /apps/<org>/<slug>): the list, publishing a flow, and
 * one app's page: its settings, the version it serves (publish another or roll back), how to
 * embed it or call it over REST, its keys, and deleting it.
 *
 * Editors and owners of the workspace change apps; viewers read everything.
 */
import { useId, useMemo, useRef, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ApiError, api, call, type Flow, type Page, type Schemas } from "../api/client";
import { DataTable, LoadState, PagedTable } from "../components/DataTable";
import { useToast } from "../components/toast";
import {
  Alert,
  Badge,
  Button,
  ConfirmDialog,
  EmptyState,
  Field,
  FormDialog,
  RevokeKeyDialog,
  KeyShownOnceDialog,
  PageHeader,
  SelectField,
  Spinner,
  TextField,
  formatDate,
  relativeTime,
} from "../components/ui";
import { useAsync, usePaged, useSubmit } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { can } from "../lib/permissions";
import { useNameAndSlug } from "../lib/slug";

type App = Schemas["AppOut"];
type AppIn = Schemas["AppIn"];
type AppPatch = Schemas["AppPatchIn"];
type AppKey = Schemas["AppKeyOut"];
type AppKeyCreated = Schemas["AppKeyCreatedOut"];
type Version = Schemas["VersionOut"];
type Access = AppIn["access"];

const NO_FLOWS: Flow[] = [];
const RATE_MAX = 100_000;

const ACCESS_OPTIONS: { value: Access; label: string; help: (orgName: string) => string }[] = [
  {
    value: "public",
    label: "Anyone with the link",
    help: () => "No sign-in. Each browser gets an anonymous identity of its own and its own rate limit.",
  },
  {
    value: "members",
    label: "Members of the organisation",
    help: (orgName) => `Visitors sign in; only members of ${orgName} get in, anyone else finds nothing at the address.`,
  },
  {
    value: "key",
    label: "Holders of an app key",
    help: (orgName) =>
      `Programs and partners send a key you make on the app's page (Authorization: Bearer ffa_…). Members of ${orgName} still open it signed in.`,
  },
];

function accessLabel(access: string): string {
  return ACCESS_OPTIONS.find((a) => a.value === access)?.label ?? access;
}

function shortHash(hash: string): string {
  return hash.slice(0, 12);
}

/** The app's address without the host, as people say it: "/apps/acme/support-bot". */
function addressOf(app: Pick<App, "url">): string {
  try {
    return new URL(app.url, window.location.origin).pathname;
  } catch {
    return app.url;
  }
}

/** Where programs start runs of the app: the API twin of its address (`/apps/o/s` -> `/api/apps/o/s/runs`). */
export function runsEndpoint(appUrl: string): string {
  const url = new URL(appUrl, window.location.origin);
  return `${url.origin}/api${url.pathname.replace(/\/+$/, "")}/runs`;
}

function useWorkspace(orgSlug: string, wsId: string) {
  return useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}", { params: { path: { org_slug: orgSlug, ws_id: wsId } } })),
    [orgSlug, wsId],
  );
}

/* ---- the settings both the publish dialog and the app's page edit ---- */

interface AppSettings {
  title: string;
  slug: string;
  description: string;
  access: Access;
  visitorRate: string;
  appRate: string;
  /** One origin per line, as typed. */
  origins: string;
}

type SettingsBody = Required<Pick<AppIn, "title" | "slug" | "description" | "access" | "visitor_rate_per_minute" | "app_rate_per_minute" | "allowed_origins">>;

const SETTINGS_INPUTS = [
  "title",
  "slug",
  "description",
  "access",
  "visitor_rate_per_minute",
  "app_rate_per_minute",
  "allowed_origins",
];

function settingsOf(app: App): AppSettings {
  return {
    title: app.title,
    slug: app.slug,
    description: app.description,
    access: app.access as Access,
    visitorRate: String(app.visitor_rate_per_minute),
    appRate: String(app.app_rate_per_minute),
    origins: app.allowed_origins.join("\n"),
  };
}

/** The non-empty lines of the origins box, each with its line number (for the server's "allowed_origins.2"). */
function originLines(text: string): { origin: string; line: number }[] {
  return text
    .split("\n")
    .map((origin, index) => ({ origin: origin.trim(), line: index + 1 }))
    .filter((o) => o.origin !== "");
}

function parseRate(text: string, field: string, problems: Record<string, string>): number {
  const value = text.trim();
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > RATE_MAX) {
    problems[field] = `A whole number of runs per minute, from 1 to ${RATE_MAX.toLocaleString("en-US")}.`;
    return 0;
  }
  return Number(value);
}

/** The API body of the settings; a rate that is not a whole number is refused here, beside its input. */
function settingsBody(settings: AppSettings): SettingsBody {
  const problems: Record<string, string> = {};
  const body: SettingsBody = {
    title: settings.title.trim(),
    slug: settings.slug.trim(),
    description: settings.description,
    access: settings.access,
    visitor_rate_per_minute: parseRate(settings.visitorRate, "visitor_rate_per_minute", problems),
    app_rate_per_minute: parseRate(settings.appRate, "app_rate_per_minute", problems),
    allowed_origins: originLines(settings.origins).map((o) => o.origin),
  };
  if (Object.keys(problems).length > 0) {
    throw new ApiError(422, "Please correct the highlighted fields.", "invalid", problems);
  }
  return body;
}

/**
 * The server's refusal, with every message on its input: a taken slug (409) under the slug,
 * and a bad origin ("allowed_origins.1") under the origins box, naming its line.
 */
function fieldsByInput(err: unknown, origins: string): unknown {
  if (!(err instanceof ApiError)) return err;
  if (err.code === "slug_taken") {
    return new ApiError(err.status, err.detail, "invalid", { slug: err.detail });
  }
  const lines = originLines(origins);
  const fields: Record<string, string> = {};
  const originProblems: string[] = [];
  for (const [key, message] of Object.entries(err.fields)) {
    const [input = key, index] = key.split(".");
    if (input === "allowed_origins" && index !== undefined) {
      const line = lines[Number(index)]?.line;
      originProblems.push(line ? `Line ${line}: ${message}` : message);
    } else {
      fields[input] ??= message;
    }
  }
  if (originProblems.length > 0) fields.allowed_origins = originProblems.join(" ");
  const code = err.code === "invalid_origins" ? "invalid" : err.code;
  return new ApiError(err.status, err.detail, code, fields);
}

function AccessField({
  value,
  onChange,
  error,
}: {
  value: Access;
  onChange: (access: Access) => void;
  error?: string;
}) {
  const { org } = useOrg();
  const errorId = useId();
  return (
    <fieldset className="apps-access" aria-describedby={error ? errorId : undefined}>
      <legend className="label">Who may use it</legend>
      {ACCESS_OPTIONS.map((option) => (
        <label key={option.value} className="apps-access-option">
          <input
            type="radio"
            name="access"
            value={option.value}
            checked={value === option.value}
            onChange={() => onChange(option.value)}
          />
          <span>
            <span className="apps-access-label">{option.label}</span>
            <span className="hint">{option.help(org.name)}</span>
          </span>
        </label>
      ))}
      {error ? (
        <span className="error" id={errorId} role="alert">
          {error}
        </span>
      ) : null}
    </fieldset>
  );
}

/** Title, address, description, access, rates and embedding sites: the same inputs when publishing and after. */
function AppSettingsFields({
  value,
  onChange,
  fields,
  slugHint,
}: {
  value: AppSettings;
  onChange: (change: Partial<AppSettings>) => void;
  fields: Record<string, string>;
  slugHint: ReactNode;
}) {
  const { org } = useOrg();
  return (
    <>
      <TextField
        label="Title"
        name="title"
        required
        maxLength={100}
        autoComplete="off"
        value={value.title}
        onChange={(e) => onChange({ title: e.target.value })}
        error={fields.title}
      />
      <Field label="Address" error={fields.slug} hint={slugHint}>
        {(a11y) => (
          <div className="input-prefix">
            <span aria-hidden="true">/apps/{org.slug}/</span>
            <input
              className="input"
              name="slug"
              required
              autoComplete="off"
              value={value.slug}
              onChange={(e) => onChange({ slug: e.target.value })}
              {...a11y}
            />
          </div>
        )}
      </Field>
      <Field label="Description (optional)" error={fields.description} hint="Shown to visitors above the form.">
        {(a11y) => (
          <textarea
            className="input apps-textarea"
            name="description"
            maxLength={2000}
            rows={2}
            value={value.description}
            onChange={(e) => onChange({ description: e.target.value })}
            {...a11y}
          />
        )}
      </Field>
      <AccessField value={value.access} onChange={(access) => onChange({ access })} error={fields.access} />
      <div className="form-grid">
        <TextField
          label="Runs per minute per visitor"
          name="visitor_rate_per_minute"
          type="number"
          inputMode="numeric"
          min={1}
          max={RATE_MAX}
          step={1}
          required
          value={value.visitorRate}
          onChange={(e) => onChange({ visitorRate: e.target.value })}
          error={fields.visitor_rate_per_minute}
          hint="Past it, a visitor is asked to wait."
        />
        <TextField
          label="Runs per minute in all"
          name="app_rate_per_minute"
          type="number"
          inputMode="numeric"
          min={1}
          max={RATE_MAX}
          step={1}
          required
          value={value.appRate}
          onChange={(e) => onChange({ appRate: e.target.value })}
          error={fields.app_rate_per_minute}
          hint="All visitors together."
        />
      </div>
      <Field
        label="Sites that may embed it"
        error={fields.allowed_origins}
        hint="One origin per line, e.g. https://www.example.com. Other sites cannot show the app in a frame; empty allows none."
      >
        {(a11y) => (
          <textarea
            className="input apps-textarea mono"
            name="allowed_origins"
            rows={3}
            spellCheck={false}
            placeholder="https://www.example.com"
            value={value.origins}
            onChange={(e) => onChange({ origins: e.target.value })}
            {...a11y}
          />
        )}
      </Field>
    </>
  );
}

/* ---- the list ---- */

function AccessBadge({ access }: { access: string }) {
  return <Badge>{accessLabel(access)}</Badge>;
}

function PublishedBadge({ published }: { published: boolean }) {
  return published ? <Badge tone="success">Published</Badge> : <Badge tone="muted">Unpublished</Badge>;
}

export function WorkspaceAppsPage() {
  const { wsId = "" } = useParams();
  const { org, role: orgRole } = useOrg();
  const path = { org_slug: org.slug, ws_id: wsId };
  const workspace = useWorkspace(org.slug, wsId);
  const apps = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/apps", { params: { path } })),
    [org.slug, wsId],
  );
  const [publishing, setPublishing] = useState(false);

  if (workspace.loading && !workspace.data) return <Spinner />;
  if (workspace.error || !workspace.data) return <Alert>{workspace.error?.detail ?? "Workspace not found."}</Alert>;
  const ws = workspace.data;
  // Publishing takes the role that runs flows: editors and owners.
  const mayWrite = can.runFlows(orgRole, ws.role) && !ws.archived;
  const base = `/orgs/${org.slug}/workspaces/${wsId}`;

  return (
    <>
      <PageHeader
        breadcrumbs={
          <>
            <Link to={`/orgs/${org.slug}/workspaces`}>Workspaces</Link> / <Link to={base}>{ws.name}</Link>
          </>
        }
        title="Apps"
        description={`Flows of ${ws.name} published as apps: a page people open, embed in a site, or call over REST.`}
        actions={
          mayWrite ? (
            <Button variant="primary" onClick={() => setPublishing(true)}>
              Publish a flow
            </Button>
          ) : null
        }
      />
      <section className="card" aria-label="Apps">
        <LoadState error={apps.error} loading={!apps.data}>
          {() =>
            apps.data!.length === 0 ? (
              <EmptyState title="No apps yet">
                {mayWrite
                  ? "Publish a flow to give it an address people can open."
                  : "Editors and owners of this workspace publish flows as apps."}
              </EmptyState>
            ) : (
              <DataTable columns={["App", "Address", "Flow", "Version", "Access", "Status"]} testId="apps-table">
                {apps.data!.map((app) => (
                  <tr key={app.id} data-testid="app-row" className={app.published ? undefined : "is-dim"}>
                    <td>
                      <Link to={`${base}/apps/${app.id}`}>
                        <strong>{app.title}</strong>
                      </Link>
                      {app.description ? <div className="small muted apps-clip">{app.description}</div> : null}
                    </td>
                    <td className="mono nowrap">
                      <a href={app.url} target="_blank" rel="noopener noreferrer">
                        {addressOf(app)}
                      </a>
                    </td>
                    <td>{app.flow_name}</td>
                    <td className="mono muted" title={app.version}>
                      {shortHash(app.version)}
                    </td>
                    <td>
                      <AccessBadge access={app.access} />
                    </td>
                    <td>
                      <PublishedBadge published={app.published} />
                    </td>
                  </tr>
                ))}
              </DataTable>
            )
          }
        </LoadState>
      </section>
      {publishing ? <PublishDialog wsId={wsId} onClose={() => setPublishing(false)} /> : null}
    </>
  );
}

/** Pick a flow and publish its current version; then open the new app's page. */
function PublishDialog({ wsId, onClose }: { wsId: string; onClose: () => void }) {
  const { org } = useOrg();
  const navigate = useNavigate();
  const toast = useToast();
  const path = { org_slug: org.slug, ws_id: wsId };
  const flows = useAsync(
    () =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/flows", { params: { path, query: { page_size: 100 } } }),
      ).then((page) => page.results),
    [org.slug, wsId],
  );
  const [flowId, setFlowId] = useState("");
  const { name: title, slug, setName: setTitle, setSlug } = useNameAndSlug();
  const [rest, setRest] = useState<Omit<AppSettings, "title" | "slug">>({
    description: "",
    access: "public",
    visitorRate: "10",
    appRate: "600",
    origins: "",
  });
  const submit = useSubmit(["flow_id", "version", ...SETTINGS_INPUTS]);
  const flow = (flows.data ?? NO_FLOWS).find((f) => f.id === flowId);
  const settings: AppSettings = { ...rest, title, slug };

  const onChange = (change: Partial<AppSettings>) => {
    const { title: newTitle, slug: newSlug, ...others } = change;
    if (newTitle !== undefined) setTitle(newTitle);
    if (newSlug !== undefined) setSlug(newSlug);
    if (Object.keys(others).length > 0) setRest((r) => ({ ...r, ...others }));
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      if (!flow) {
        throw new ApiError(422, "Please correct the highlighted field.", "invalid", { flow_id: "Choose a flow." });
      }
      // The version shown here is the one published, even if someone saves the flow meanwhile.
      const body: AppIn = { flow_id: flow.id, version: flow.current_version, ...settingsBody(settings) };
      const app = await call(() =>
        api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/apps", { params: { path }, body }),
      ).catch((err: unknown) => {
        throw fieldsByInput(err, settings.origins);
      });
      toast.success(`${app.title} is live at ${addressOf(app)}.`);
      navigate(`/orgs/${org.slug}/workspaces/${wsId}/apps/${app.id}`);
    });
  };

  return (
    <FormDialog
      title="Publish a flow"
      description="The app serves one saved version of the flow, until you publish another."
      onClose={onClose}
      onSubmit={onSubmit}
      submit={submit}
      submitLabel="Publish"
    >
      <div className="stack apps-dialog-fields">
        <SelectField
          label="Flow"
          name="flow_id"
          value={flowId}
          onChange={(e) => {
            setFlowId(e.target.value);
            const picked = flows.data?.find((f) => f.id === e.target.value);
            if (picked && !title) setTitle(picked.name);
          }}
          error={submit.fields.flow_id ?? submit.fields.version}
          hint={
            flow?.current_version ? (
              <>
                Publishes version <code>{shortHash(flow.current_version)}</code>, the flow's latest. Pick another on
                the app's page.
              </>
            ) : flows.error ? (
              flows.error.detail
            ) : undefined
          }
        >
          <option value="">{flows.data ? "Choose a flow" : "Loading flows…"}</option>
          {(flows.data ?? NO_FLOWS).map((f) => (
            <option key={f.id} value={f.id} disabled={!f.current_version}>
              {f.current_version ? f.name : `${f.name} (not saved yet)`}
            </option>
          ))}
        </SelectField>
        <AppSettingsFields
          value={settings}
          onChange={onChange}
          fields={submit.fields}
          slugHint="Suggested from the title: 3-50 lowercase letters, digits and hyphens."
        />
      </div>
    </FormDialog>
  );
}

/* ---- one app ---- */

export function AppPage() {
  const { wsId = "", appId = "" } = useParams();
  const { org, role: orgRole } = useOrg();
  const navigate = useNavigate();
  const toast = useToast();
  const path = { org_slug: org.slug, ws_id: wsId, app_id: appId };
  const workspace = useWorkspace(org.slug, wsId);
  const app = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}", { params: { path } })),
    [org.slug, wsId, appId],
  );
  const [toggling, setToggling] = useState(false);
  const [unpublishing, setUnpublishing] = useState(false);
  const [deleting, setDeleting] = useState(false);

  if ((workspace.loading && !workspace.data) || (app.loading && !app.data)) return <Spinner />;
  if (workspace.error || !workspace.data) return <Alert>{workspace.error?.detail ?? "Workspace not found."}</Alert>;
  if (app.error || !app.data) return <Alert>{app.error?.detail ?? "App not found."}</Alert>;
  const ws = workspace.data;
  const current = app.data;
  const mayWrite = can.runFlows(orgRole, ws.role) && !ws.archived;
  const base = `/orgs/${org.slug}/workspaces/${wsId}`;
  const replace = (updated: App) => app.setData(() => updated);

  const setPublished = async (published: boolean) => {
    const updated = await call(() =>
      api.PATCH("/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}", { params: { path }, body: { published } }),
    );
    replace(updated);
    toast.success(
      published ? `${updated.title} is live again at ${addressOf(updated)}.` : `${updated.title} is unpublished.`,
    );
  };

  const publish = async () => {
    setToggling(true);
    try {
      await setPublished(true);
    } catch (err) {
      toast.error((err as Error).message);
    } finally {
      setToggling(false);
    }
  };

  return (
    <>
      <PageHeader
        breadcrumbs={
          <>
            <Link to={`/orgs/${org.slug}/workspaces`}>Workspaces</Link> / <Link to={base}>{ws.name}</Link> /{" "}
            <Link to={`${base}/apps`}>Apps</Link>
          </>
        }
        title={
          <span className="row" style={{ gap: 10 }}>
            {current.title} <PublishedBadge published={current.published} />
          </span>
        }
        description={
          <>
            <a href={current.url} target="_blank" rel="noopener noreferrer" className="mono">
              {addressOf(current)}
            </a>{" "}
            · {accessLabel(current.access)} · serves <code title={current.version}>{shortHash(current.version)}</code>{" "}
            of {current.flow_name}
            {current.published_by_email ? `, published by ${current.published_by_email}` : ""}
          </>
        }
        actions={
          mayWrite ? (
            <>
              {current.published ? (
                <Button onClick={() => setUnpublishing(true)}>Unpublish</Button>
              ) : (
                <Button variant="primary" busy={toggling} onClick={publish}>
                  Publish
                </Button>
              )}
              <Button variant="danger-ghost" onClick={() => setDeleting(true)}>
                Delete
              </Button>
            </>
          ) : null
        }
      />
      {!current.published ? (
        <div className="apps-unpublished">
          <Alert kind="warn">
            This app is unpublished: its address, embeds and REST calls answer "not found" until it is published again.
          </Alert>
        </div>
      ) : null}
      <>
        <SettingsCard key={current.id} app={current} mayWrite={mayWrite} onSaved={replace} />
        <VersionsCard app={current} mayWrite={mayWrite} onChanged={replace} />
        <UseCard app={current} />
        <KeysCard app={current} mayWrite={mayWrite} />
      </>
      {unpublishing ? (
        <ConfirmDialog
          title={`Unpublish ${current.title}?`}
          description={
            <>
              Visitors, embeds and programs find nothing at <code>{addressOf(current)}</code> until you publish it again.
              Its settings and keys stay.
            </>
          }
          confirmLabel="Unpublish"
          onClose={() => setUnpublishing(false)}
          onConfirm={() => setPublished(false)}
        />
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title={`Delete ${current.title}?`}
          description={
            <>
              The address <code>{addressOf(current)}</code> stops working and the app's keys with it. The flow and its
              versions stay. This cannot be undone.
            </>
          }
          confirmLabel="Delete app"
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await call(() =>
              api.DELETE("/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}", { params: { path } }),
            );
            toast.success(`${current.title} deleted.`);
            navigate(`${base}/apps`);
          }}
        />
      ) : null}
    </>
  );
}

function CardHeader({ id, title, children }: { id: string; title: string; children?: ReactNode }) {
  return (
    <div className="card-header">
      <div>
        <h2 id={id}>{title}</h2>
        {children ? <p>{children}</p> : null}
      </div>
    </div>
  );
}

function SettingsCard({ app, mayWrite, onSaved }: { app: App; mayWrite: boolean; onSaved: (app: App) => void }) {
  const { org } = useOrg();
  const { wsId = "" } = useParams();
  const toast = useToast();
  const headingId = useId();
  const [settings, setSettings] = useState<AppSettings>(() => settingsOf(app));
  const submit = useSubmit(SETTINGS_INPUTS);
  const saved = settingsOf(app);
  const dirty = (Object.keys(saved) as (keyof AppSettings)[]).some((k) => saved[k] !== settings[k]);

  const discard = () => {
    setSettings(saved);
    submit.reset();
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const body = settingsBody(settings);
      const before = settingsBody(saved);
      // Only what changed: the audit log then says exactly that.
      const changes: AppPatch = {};
      for (const key of Object.keys(body) as (keyof SettingsBody)[]) {
        if (JSON.stringify(body[key]) !== JSON.stringify(before[key])) Object.assign(changes, { [key]: body[key] });
      }
      const updated = await call(() =>
        api.PATCH("/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}", {
          params: { path: { org_slug: org.slug, ws_id: wsId, app_id: app.id } },
          body: changes,
        }),
      ).catch((err: unknown) => {
        throw fieldsByInput(err, settings.origins);
      });
      // The server tidies what it stores (origins lower-cased and sorted): show that.
      setSettings(settingsOf(updated));
      onSaved(updated);
      toast.success("Settings saved.");
    });
  };

  return (
    <section className="card" aria-labelledby={headingId}>
      <CardHeader id={headingId} title="Settings">
        {mayWrite ? "Changes apply at once to everyone using the app." : "Only editors and owners of the workspace change apps."}
      </CardHeader>
      <div className="card-body">
        <form className="stack" onSubmit={onSubmit} noValidate aria-labelledby={headingId}>
          {submit.error ? <Alert>{submit.error}</Alert> : null}
          <fieldset className="apps-fieldset stack" disabled={!mayWrite}>
            <AppSettingsFields
              value={settings}
              onChange={(change) => setSettings((s) => ({ ...s, ...change }))}
              fields={submit.fields}
              slugHint="Changing it moves the app: links and embeds using the old address stop working."
            />
          </fieldset>
          {mayWrite ? (
            <div className="form-actions">
              <Button variant="ghost" disabled={!dirty || submit.busy} onClick={discard}>
                Discard
              </Button>
              <Button type="submit" variant="primary" busy={submit.busy} disabled={!dirty}>
                Save changes
              </Button>
            </div>
          ) : null}
        </form>
      </div>
    </section>
  );
}

/** The versions of the app's flow, newest first; one click serves another (newer, or an older one: a roll-back). */
function VersionsCard({ app, mayWrite, onChanged }: { app: App; mayWrite: boolean; onChanged: (app: App) => void }) {
  const { org } = useOrg();
  const { wsId = "" } = useParams();
  const toast = useToast();
  const headingId = useId();
  const [switching, setSwitching] = useState<string | null>(null);
  const versions = usePaged<Version>(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}/versions", {
          params: {
            path: { org_slug: org.slug, ws_id: wsId, flow_id: app.flow_id },
            query: { cursor: cursor ?? undefined, page_size: 20 },
          },
        }),
      ) as Promise<Page<Version>>,
    [org.slug, wsId, app.flow_id],
  );
  // Newest first: rows above the published one are newer, rows below are a roll-back.
  const publishedIndex = versions.items.findIndex((v) => v.hash === app.version);

  const serve = async (version: Version, rollBack: boolean) => {
    setSwitching(version.hash);
    try {
      const updated = await call(() =>
        api.PATCH("/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}", {
          params: { path: { org_slug: org.slug, ws_id: wsId, app_id: app.id } },
          body: { version: version.hash },
        }),
      );
      onChanged(updated);
      toast.success(
        `${rollBack ? "Rolled back" : "Published"}: ${updated.title} now serves version ${shortHash(version.hash)}.`,
      );
    } catch (err) {
      toast.error((err as Error).message);
    } finally {
      setSwitching(null);
    }
  };

  return (
    <section className="card" aria-labelledby={headingId}>
      <CardHeader id={headingId} title={`Versions of ${app.flow_name}`}>
        The app serves one version; runs act as the member who published it
        {mayWrite ? ", so publishing one here makes that you" : ""}.
      </CardHeader>
      <PagedTable
        list={versions}
        className="table table-dense"
        columns={["Version", "Message", "Saved by", "Saved"]}
        actions={mayWrite}
        testId="app-versions"
        empty={<EmptyState title="No versions">The flow has no saved version.</EmptyState>}
        row={(version) => {
          const index = versions.items.indexOf(version);
          const isPublished = version.hash === app.version;
          const rollBack = publishedIndex !== -1 && index > publishedIndex;
          const label = rollBack ? "Roll back to this version" : "Publish this version";
          return (
            <tr key={version.hash} data-testid="app-version-row" data-published={isPublished || undefined}>
              <td className="nowrap">
                <code title={version.hash}>{shortHash(version.hash)}</code>{" "}
                {isPublished ? <Badge tone="success">{app.published ? "Published" : "Pinned"}</Badge> : null}
                {index === 0 && !isPublished ? <Badge tone="muted">Latest</Badge> : null}
              </td>
              <td>{version.message || <span className="muted">No message</span>}</td>
              <td className="small">{version.author_email ?? "—"}</td>
              <td className="small nowrap" title={formatDate(version.created_at)}>
                {relativeTime(version.created_at)}
              </td>
              {mayWrite ? (
                <td className="actions">
                  {!isPublished ? (
                    <Button
                      size="sm"
                      variant={rollBack ? "default" : "primary"}
                      busy={switching === version.hash}
                      disabled={switching !== null}
                      onClick={() => serve(version, rollBack)}
                      aria-label={`${label} (${shortHash(version.hash)})`}
                    >
                      {label}
                    </Button>
                  ) : null}
                </td>
              ) : null}
            </tr>
          );
        }}
      />
    </section>
  );
}

/** A multi-line snippet with a Copy button. */
function CopyBlock({ value, label, testId }: { value: string; label: string; testId?: string }) {
  const [copied, setCopied] = useState(false);
  const ref = useRef<HTMLPreElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // Clipboard API unavailable (http, old browser): select the text for Ctrl+C instead.
      if (ref.current) window.getSelection()?.selectAllChildren(ref.current);
      document.execCommand?.("copy");
    }
    setCopied(true);
    window.setTimeout(() => setCopied(false), 2000);
  };
  return (
    <div className="apps-snippet">
      <pre ref={ref} aria-label={label} data-testid={testId} tabIndex={0}>
        {value}
      </pre>
      <Button size="sm" onClick={copy} aria-label={`Copy ${label.toLowerCase()}`}>
        {copied ? "Copied" : "Copy"}
      </Button>
    </div>
  );
}

/** Embedding in a site, and calling over REST. */
function UseCard({ app }: { app: App }) {
  const headingId = useId();
  const endpoint = useMemo(() => runsEndpoint(app.url), [app.url]);
  const curl = [
    `curl -X POST ${endpoint} \\`,
    `  -H "Authorization: Bearer ffa_…" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d '{"inputs": {}}'`,
  ].join("\n");
  return (
    <section className="card" aria-labelledby={headingId}>
      <CardHeader id={headingId} title="Use it" />
      <div className="card-body stack">
        <div className="stack apps-use">
          <h3>Embed in a site</h3>
          <CopyBlock value={app.embed_html} label="Embed snippet" testId="app-embed" />
          {app.allowed_origins.length > 0 ? (
            <p className="small muted">
              Only {app.allowed_origins.map((o, i) => (
                <span key={o}>
                  {i > 0 ? ", " : ""}
                  <code>{o}</code>
                </span>
              ))}{" "}
              may show the app in a frame; browsers refuse it elsewhere. Change this under "Sites that may embed it".
            </p>
          ) : (
            <Alert kind="info">
              No site may embed this app yet: add your site's origin under "Sites that may embed it" above, or browsers
              refuse to show the frame.
            </Alert>
          )}
        </div>
        <div className="stack apps-use">
          <h3>Call it over REST</h3>
          <CopyBlock value={curl} label="REST example" testId="app-curl" />
          <p className="small muted">
            Replace <code>ffa_…</code> with a key of this app (below) and put the flow's inputs in <code>inputs</code>.
            The answer says the run's <code>id</code>; follow it at <code>GET {endpoint}/&lt;id&gt;</code>, or live at{" "}
            <code>…/&lt;id&gt;/stream</code>. Past the rates, the answer is 429 with <code>Retry-After</code>.
          </p>
        </div>
      </div>
    </section>
  );
}

function KeysCard({ app, mayWrite }: { app: App; mayWrite: boolean }) {
  const { org } = useOrg();
  const { wsId = "" } = useParams();
  const headingId = useId();
  const path = { org_slug: org.slug, ws_id: wsId, app_id: app.id };
  const keys = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}/keys", { params: { path } })),
    [org.slug, wsId, app.id],
  );
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<AppKey | null>(null);

  return (
    <section className="card" aria-labelledby={headingId} data-testid="app-keys">
      <div className="card-header">
        <div>
          <h2 id={headingId}>Keys</h2>
          <p>
            {app.access === "key"
              ? "Programs and partners use the app with one of these keys."
              : `A key also opens the app (it is ${accessLabel(app.access).toLowerCase()} now): give one to a program so its runs are told apart.`}
          </p>
        </div>
        {mayWrite ? (
          <Button size="sm" variant="primary" onClick={() => setCreating(true)}>
            New key
          </Button>
        ) : null}
      </div>
      <LoadState error={keys.error} loading={!keys.data}>
        {() =>
          keys.data!.length === 0 ? (
            <EmptyState title="No keys">{mayWrite ? "Make one for each program or partner." : undefined}</EmptyState>
          ) : (
            <DataTable
              className="table table-dense"
              columns={["Name", "Made by", "Made", "Last used", "Status"]}
              actions={mayWrite}
            >
              {keys.data!.map((key) => (
                <tr key={key.id} className={key.revoked_at ? "is-dim" : undefined} data-testid="app-key-row">
                  <td>
                    <strong className="nowrap">{key.name}</strong>
                    <div>
                      <code className="muted">{key.prefix}…</code>
                    </div>
                  </td>
                  <td className="small">{key.created_by_email ?? "—"}</td>
                  <td className="small nowrap">{formatDate(key.created_at)}</td>
                  <td className="small nowrap" title={key.last_used_at ?? undefined}>
                    {relativeTime(key.last_used_at)}
                  </td>
                  <td>
                    {key.revoked_at ? <Badge tone="danger">Revoked</Badge> : <Badge tone="success">Active</Badge>}
                  </td>
                  {mayWrite ? (
                    <td className="actions">
                      {!key.revoked_at ? (
                        <Button
                          size="sm"
                          variant="danger-ghost"
                          onClick={() => setRevoking(key)}
                          aria-label={`Revoke ${key.name}`}
                        >
                          Revoke
                        </Button>
                      ) : null}
                    </td>
                  ) : null}
                </tr>
              ))}
            </DataTable>
          )
        }
      </LoadState>
      {creating ? (
        <NewKeyDialog app={app} onCreated={keys.reload} onClose={() => setCreating(false)} />
      ) : null}
      {revoking ? (
        <RevokeKeyDialog
          name={revoking.name}
          prefix={revoking.prefix}
          onClose={() => setRevoking(null)}
          revoke={async () => {
            await call(() =>
              api.DELETE("/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}/keys/{app_key_id}", {
                params: { path: { ...path, app_key_id: revoking.id } },
              }),
            );
            keys.reload();
          }}
        />
      ) : null}
    </section>
  );
}

function NewKeyDialog({ app, onCreated, onClose }: { app: App; onCreated: () => void; onClose: () => void }) {
  const { org } = useOrg();
  const { wsId = "" } = useParams();
  const [name, setName] = useState("");
  const [created, setCreated] = useState<AppKeyCreated | null>(null);
  const submit = useSubmit(["name"]);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const key = await call(() =>
        api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}/keys", {
          params: { path: { org_slug: org.slug, ws_id: wsId, app_id: app.id } },
          body: { name: name.trim() },
        }),
      );
      setCreated(key);
      onCreated();
    });
  };

  if (created) {
    return (
      <KeyShownOnceDialog
        title="Copy your new app key"
        label="App key"
        value={created.key}
        testId="app-key-created"
        secretTestId="app-key-secret"
        onClose={onClose}
      >
        Programs send it in a header: <code>Authorization: Bearer &lt;key&gt;</code>. It opens {app.title} only.
      </KeyShownOnceDialog>
    );
  }

  return (
    <FormDialog
      title={`New key for ${app.title}`}
      description="Name it after the program or partner that will use it."
      onClose={onClose}
      onSubmit={onSubmit}
      submit={submit}
      submitLabel="Make key"
    >
      <TextField
        label="Name"
        name="name"
        required
        maxLength={100}
        autoComplete="off"
        placeholder="Partner portal"
        value={name}
        onChange={(e) => setName(e.target.value)}
        error={submit.fields.name}
      />
    </FormDialog>
  );
}
