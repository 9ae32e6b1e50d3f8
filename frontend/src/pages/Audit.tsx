import { useState, type FormEvent } from "react";
import { api, call, type AuditEvent } from "../api/client";
import { PagedTable } from "../components/DataTable";
import { Button, EmptyState, PageHeader, SelectField, TextField, formatDate } from "../components/ui";
import { useAsync, usePaged } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { useWorkspaceNames } from "../lib/workspaces";

/** Actions the API records, grouped by family (the `action` filter takes either). */
export const AUDIT_ACTIONS: Record<string, string[]> = {
  member: ["member.added", "member.role_changed", "member.removed", "member.left"],
  invitation: ["invitation.created", "invitation.accepted", "invitation.revoked"],
  workspace: [
    "workspace.created",
    "workspace.renamed",
    "workspace.archived",
    "workspace.restored",
    "workspace.member_role_set",
    "workspace.member_removed",
  ],
  api_key: ["api_key.created", "api_key.revoked"],
  org: ["org.created"],
};

interface Filters {
  action: string;
  actor_id: string;
  workspace_id: string;
  since: string; // yyyy-mm-dd (local day)
  until: string;
}

const EMPTY: Filters = { action: "", actor_id: "", workspace_id: "", since: "", until: "" };

/** A local calendar day as an ISO instant: its first moment, or (for `until`) its last. */
function dayBound(day: string, end: boolean): string | undefined {
  if (!day) return undefined;
  const [y, m, d] = day.split("-").map(Number);
  const date = end ? new Date(y!, m! - 1, d! + 1, 0, 0, 0, -1) : new Date(y!, m! - 1, d!, 0, 0, 0, 0);
  return date.toISOString();
}

function renderValues(values: Record<string, unknown> | null): string {
  if (!values) return "";
  return Object.entries(values)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join("\n");
}

export function AuditPage() {
  const { org } = useOrg();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const members = useAsync(
    () =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/members", {
          params: { path: { org_slug: org.slug }, query: { page_size: 200 } },
        }),
      ),
    [org.slug],
  );
  const { workspaces, names: workspaceNames } = useWorkspaceNames(org.slug, { includeArchived: true });
  const list = usePaged(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/audit", {
          params: {
            path: { org_slug: org.slug },
            query: {
              action: filters.action || undefined,
              actor_id: filters.actor_id || undefined,
              workspace_id: filters.workspace_id || undefined,
              since: dayBound(filters.since, false),
              until: dayBound(filters.until, true),
              cursor: cursor ?? undefined,
              page_size: 50,
            },
          },
        }),
      ),
    [org.slug, filters],
  );

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilters(draft);
  };
  const set = (key: keyof Filters) => (e: { target: { value: string } }) =>
    setDraft((d) => ({ ...d, [key]: e.target.value }));
  const filtered = Object.values(filters).some(Boolean);

  return (
    <>
      <PageHeader
        title="Audit log"
        description="Every change to members, roles, invitations, workspaces and API keys, newest first."
      />
      <section className="card" aria-label="Filters">
        <div className="card-body">
          <form onSubmit={apply} aria-label="Filter the audit log" className="stack">
            <div className="form-grid">
              <SelectField label="Action" name="action" value={draft.action} onChange={set("action")}>
                <option value="">All actions</option>
                {Object.entries(AUDIT_ACTIONS).map(([family, actions]) => (
                  <optgroup key={family} label={family}>
                    <option value={family}>All {family.replace("_", " ")} actions</option>
                    {actions.map((a) => (
                      <option key={a} value={a}>
                        {a}
                      </option>
                    ))}
                  </optgroup>
                ))}
              </SelectField>
              <SelectField label="Who" name="actor_id" value={draft.actor_id} onChange={set("actor_id")}>
                <option value="">Anyone</option>
                {members.data?.results.map((m) => (
                  <option key={m.user.id} value={m.user.id}>
                    {m.user.name ? `${m.user.name} (${m.user.email})` : m.user.email}
                  </option>
                ))}
              </SelectField>
              <SelectField label="Workspace" name="workspace_id" value={draft.workspace_id} onChange={set("workspace_id")}>
                <option value="">Any workspace</option>
                {workspaces.map((w) => (
                  <option key={w.id} value={w.id}>
                    {w.name}
                    {w.archived ? " (archived)" : ""}
                  </option>
                ))}
              </SelectField>
              <TextField label="From" name="since" type="date" value={draft.since} onChange={set("since")} />
              <TextField label="To" name="until" type="date" value={draft.until} onChange={set("until")} />
            </div>
            <div className="form-actions">
              {filtered ? (
                <Button
                  variant="ghost"
                  onClick={() => {
                    setDraft(EMPTY);
                    setFilters(EMPTY);
                  }}
                >
                  Clear filters
                </Button>
              ) : null}
              <Button type="submit" variant="primary">
                Apply filters
              </Button>
            </div>
          </form>
        </div>
      </section>
      <section className="card" aria-label="Audit events">
        <PagedTable
          list={list}
          empty={
            <EmptyState title="No events">
              {filtered ? "Nothing matches these filters." : "Nothing has happened yet."}
            </EmptyState>
          }
          className="table table-dense"
          testId="audit-table"
          columns={["When", "Who", "Action", "Target", "Details", "IP", "Request"]}
          row={(event) => (
            <AuditRow key={event.id} event={event} workspaceName={workspaceNames.get(event.workspace_id ?? "")} />
          )}
        />
      </section>
    </>
  );
}

function AuditRow({ event, workspaceName }: { event: AuditEvent; workspaceName?: string }) {
  const before = renderValues(event.before);
  const after = renderValues(event.after);
  return (
    <tr data-testid="audit-row" data-action={event.action}>
      <td style={{ whiteSpace: "nowrap" }} title={event.created_at}>
        {formatDate(event.created_at)}
      </td>
      <td>
        {event.actor_email || <span className="muted">system</span>}
        {event.api_key_id ? <div className="small muted">via API key</div> : null}
      </td>
      <td>
        <code>{event.action}</code>
      </td>
      <td>
        <div>{event.target_label || event.target_id}</div>
        <div className="small muted">
          {event.target_type}
          {workspaceName ? ` · in ${workspaceName}` : ""}
        </div>
      </td>
      <td>
        {before || after ? (
          <pre className="diff">
            {before ? <span className="before">{before.replace(/^/gm, "− ")}</span> : null}
            {before && after ? "\n" : null}
            {after ? <span className="after">{after.replace(/^/gm, "+ ")}</span> : null}
          </pre>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td className="mono small">{event.ip ?? "—"}</td>
      <td className="mono small" title={event.request_id}>
        {event.request_id ? event.request_id.slice(0, 12) : "—"}
      </td>
    </tr>
  );
}
