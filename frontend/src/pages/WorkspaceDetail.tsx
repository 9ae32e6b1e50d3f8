import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, call, type Flow, type Page, type WorkspaceMember, type WorkspaceRole } from "../api/client";
import { DataTable, LoadState, PagedTable } from "../components/DataTable";
import { useToast } from "../components/toast";
import {
  Alert,
  Badge,
  Button,
  EmptyState,
  FormDialog,
  PageHeader,
  PersonCell,
  RoleBadge,
  RoleOptions,
  Spinner,
  TextField,
  relativeTime,
} from "../components/ui";
import { useAuth } from "../lib/auth";
import { useAsync, usePaged, useSubmit } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { WORKSPACE_ROLES, can, isManager } from "../lib/permissions";
import { ArchiveWorkspaceDialog, RenameWorkspaceDialog, useRestoreWorkspace } from "./Workspaces";

/** Name a new flow, create it, and open it in the builder. */
function NewFlowDialog({ orgSlug, wsId, onClose }: { orgSlug: string; wsId: string; onClose: () => void }) {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const submit = useSubmit(["name"]);
  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const flow = await call(() =>
        api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/flows", {
          params: { path: { org_slug: orgSlug, ws_id: wsId } },
          body: { name: name.trim(), description: "", message: "" },
        }),
      );
      navigate(`/orgs/${orgSlug}/workspaces/${wsId}/flows/${flow.id}`);
    });
  };
  return (
    <FormDialog title="New flow" onClose={onClose} onSubmit={onSubmit} submit={submit} submitLabel="Create and open">
      <TextField
        label="Name"
        name="name"
        required
        maxLength={100}
        value={name}
        error={submit.fields.name}
        onChange={(e) => setName(e.target.value)}
      />
    </FormDialog>
  );
}

export function WorkspaceDetailPage() {
  const { wsId = "" } = useParams();
  const { org, role: orgRole } = useOrg();
  const { me } = useAuth();
  const toast = useToast();
  const [renaming, setRenaming] = useState(false);
  const [archiving, setArchiving] = useState(false);
  const path = { org_slug: org.slug, ws_id: wsId };
  const workspace = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}", { params: { path } })),
    [org.slug, wsId],
  );
  const members = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/members", { params: { path } })),
    [org.slug, wsId],
  );
  const flows = usePaged<Flow>(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/flows", {
          params: { path, query: { cursor: cursor ?? undefined, page_size: 25 } },
        }),
      ) as Promise<Page<Flow>>,
    [org.slug, wsId],
  );
  const [creating, setCreating] = useState(false);
  const [saving, setSaving] = useState<string | null>(null);
  const restore = useRestoreWorkspace(workspace.reload);

  if (workspace.loading && !workspace.data) return <Spinner />;
  if (workspace.error || !workspace.data) {
    return <Alert>{workspace.error?.detail ?? "Workspace not found."}</Alert>;
  }
  const ws = workspace.data;
  const manage = can.manageWorkspace(orgRole, ws.role);
  // Editing flows takes the role that runs them (editors and owners).
  const mayEditFlows = can.runFlows(orgRole, ws.role) && !ws.archived;

  const setRole = async (member: WorkspaceMember, role: WorkspaceRole | "") => {
    setSaving(member.user.id);
    try {
      const memberPath = { ...path, user_id: member.user.id };
      if (role === "") {
        await call(() =>
          api.DELETE("/api/orgs/{org_slug}/workspaces/{ws_id}/members/{user_id}", { params: { path: memberPath } }),
        );
        toast.success(`${member.user.email} no longer has a role on ${ws.name}.`);
      } else {
        await call(() =>
          api.PUT("/api/orgs/{org_slug}/workspaces/{ws_id}/members/{user_id}", {
            params: { path: memberPath },
            body: { role },
          }),
        );
        toast.success(`${member.user.email} is now ${role} on ${ws.name}.`);
      }
      members.reload();
    } catch (err) {
      toast.error((err as Error).message);
      members.reload();
    } finally {
      setSaving(null);
    }
  };

  return (
    <>
      <PageHeader
        breadcrumbs={<Link to={`/orgs/${org.slug}/workspaces`}>Workspaces</Link>}
        title={
          <span className="row" style={{ gap: 10 }}>
            {ws.name} {ws.archived ? <Badge tone="muted">Archived</Badge> : null}
          </span>
        }
        description={
          <>
            Your role: <RoleBadge role={ws.role} />
          </>
        }
        actions={
          <>
            <Link className="btn" to={`/orgs/${org.slug}/workspaces/${wsId}/runs`}>
              Runs
            </Link>
            <Link className="btn" to={`/orgs/${org.slug}/workspaces/${wsId}/apps`}>
              Apps
            </Link>
            {manage ? (
              <>
                <Button onClick={() => setRenaming(true)}>Rename</Button>
                {ws.archived ? (
                  <Button onClick={() => restore(ws)}>Restore</Button>
                ) : (
                  <Button variant="danger-ghost" onClick={() => setArchiving(true)}>
                    Archive
                  </Button>
                )}
              </>
            ) : null}
          </>
        }
      />
      <section className="card" aria-label="Flows">
        <div className="card-header">
          <div>
            <h2>Flows</h2>
            <p>{mayEditFlows ? "Open a flow to edit it on the canvas, or start a new one." : "Open a flow to read it."}</p>
          </div>
          {mayEditFlows ? (
            <Button size="sm" variant="primary" onClick={() => setCreating(true)}>
              New flow
            </Button>
          ) : null}
        </div>
        <PagedTable
          list={flows}
          columns={["Flow", "Version", "Updated"]}
          testId="workspace-flows"
          empty={<EmptyState title="No flows yet" />}
          row={(flow) => (
            <tr key={flow.id} data-testid="workspace-flow-row">
              <td>
                <Link to={`/orgs/${org.slug}/workspaces/${wsId}/flows/${flow.id}`}>{flow.name}</Link>
              </td>
              <td className="mono muted">{flow.current_version ? flow.current_version.slice(0, 12) : "not saved yet"}</td>
              <td>{relativeTime(flow.updated_at)}</td>
            </tr>
          )}
        />
      </section>
      <section className="card" aria-label="Workspace members">
        <div className="card-header">
          <div>
            <h2>People</h2>
            <p>Organisation owners and admins act as owners of every workspace.</p>
          </div>
        </div>
        <LoadState error={members.error} loading={!members.data}>
          {() => (
            <DataTable columns={["Member", "Organisation role", "Workspace role", "Can act as"]}>
              {members.data!.map((member) => {
                const implicit = isManager(member.org_role);
                const billing = member.org_role === "billing";
                return (
                  <tr key={member.user.id} data-testid="workspace-member-row" data-email={member.user.email}>
                    <td>
                      <PersonCell user={member.user} isMe={me?.user.id === member.user.id} />
                    </td>
                    <td>
                      <RoleBadge role={member.org_role} />
                    </td>
                    <td>
                      {manage && !billing ? (
                        <select
                          className="select select-sm"
                          aria-label={`Workspace role for ${member.user.email}`}
                          value={member.role ?? ""}
                          disabled={saving === member.user.id}
                          onChange={(e) => setRole(member, e.target.value as WorkspaceRole | "")}
                        >
                          <option value="">None</option>
                          <RoleOptions roles={WORKSPACE_ROLES} />
                        </select>
                      ) : (
                        <RoleBadge role={member.role} />
                      )}
                      {billing ? <div className="sub small muted">Billing members see billing only</div> : null}
                    </td>
                    <td>
                      <RoleBadge role={member.effective_role} />
                      {implicit ? <div className="small muted">via organisation role</div> : null}
                    </td>
                  </tr>
                );
              })}
            </DataTable>
          )}
        </LoadState>
      </section>
      {creating ? <NewFlowDialog orgSlug={org.slug} wsId={wsId} onClose={() => setCreating(false)} /> : null}
      {renaming ? (
        <RenameWorkspaceDialog workspace={ws} onClose={() => setRenaming(false)} onDone={workspace.reload} />
      ) : null}
      {archiving ? (
        <ArchiveWorkspaceDialog workspace={ws} onClose={() => setArchiving(false)} onDone={workspace.reload} />
      ) : null}
    </>
  );
}
