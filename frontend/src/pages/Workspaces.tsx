import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call, type Workspace } from "../api/client";
import { useToast } from "../components/toast";
import {
  Alert,
  Badge,
  Button,
  ConfirmDialog,
  Dialog,
  EmptyState,
  PageHeader,
  RoleBadge,
  Spinner,
  TextField,
  formatDate,
} from "../components/ui";
import { usePaged, useSubmit } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { can } from "../lib/permissions";

export function WorkspacesPage() {
  const { org, role } = useOrg();
  const toast = useToast();
  const [showArchived, setShowArchived] = useState(false);
  const [creating, setCreating] = useState(false);
  const [renaming, setRenaming] = useState<Workspace | null>(null);
  const [archiving, setArchiving] = useState<Workspace | null>(null);
  const list = usePaged(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces", {
          params: {
            path: { org_slug: org.slug },
            query: { include_archived: showArchived, cursor: cursor ?? undefined, page_size: 100 },
          },
        }),
      ),
    [org.slug, showArchived],
  );

  const restore = async (ws: Workspace) => {
    try {
      await patchWorkspace(org.slug, ws.id, { archived: false });
      toast.success(`${ws.name} restored.`);
      list.reload();
    } catch (err) {
      toast.error((err as Error).message);
    }
  };

  return (
    <>
      <PageHeader
        title="Workspaces"
        description="Workspaces hold flows, runs, secrets and apps. People get a role on each one."
        actions={
          can.createWorkspace(role) ? (
            <Button variant="primary" onClick={() => setCreating(true)}>
              New workspace
            </Button>
          ) : null
        }
      />
      <section className="card" aria-label="Workspaces">
        <div className="card-header">
          <h2>{showArchived ? "All workspaces" : "Active workspaces"}</h2>
          <label className="checkbox">
            <input type="checkbox" checked={showArchived} onChange={(e) => setShowArchived(e.target.checked)} />
            Show archived
          </label>
        </div>
        {list.error ? (
          <div className="card-body">
            <Alert>{list.error.detail}</Alert>
          </div>
        ) : list.loading ? (
          <Spinner />
        ) : list.items.length === 0 ? (
          <EmptyState title="No workspaces yet">
            {can.createWorkspace(role)
              ? "Create one to start building flows."
              : "Ask an owner or admin of the organisation to give you a role on a workspace."}
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Your role</th>
                  <th>Created</th>
                  <th>Status</th>
                  <th className="actions">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.items.map((ws) => (
                  <tr key={ws.id} className={ws.archived ? "is-dim" : undefined} data-testid="workspace-row">
                    <td>
                      <Link to={`/orgs/${org.slug}/workspaces/${ws.id}`}>
                        <strong>{ws.name}</strong>
                      </Link>
                    </td>
                    <td>
                      <RoleBadge role={ws.role} />
                    </td>
                    <td className="nowrap">{formatDate(ws.created_at)}</td>
                    <td>{ws.archived ? <Badge tone="muted">Archived</Badge> : <Badge tone="success">Active</Badge>}</td>
                    <td className="actions">
                      {can.manageWorkspace(role, ws.role) ? (
                        <>
                          <Button size="sm" variant="ghost" onClick={() => setRenaming(ws)} aria-label={`Rename ${ws.name}`}>
                            Rename
                          </Button>
                          {ws.archived ? (
                            <Button size="sm" variant="ghost" onClick={() => restore(ws)} aria-label={`Restore ${ws.name}`}>
                              Restore
                            </Button>
                          ) : (
                            <Button
                              size="sm"
                              variant="danger-ghost"
                              onClick={() => setArchiving(ws)}
                              aria-label={`Archive ${ws.name}`}
                            >
                              Archive
                            </Button>
                          )}
                        </>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {list.hasMore ? (
              <div className="table-foot">
                <Button onClick={list.loadMore} busy={list.loadingMore}>
                  Load more
                </Button>
              </div>
            ) : null}
          </div>
        )}
      </section>
      {creating ? (
        <WorkspaceNameDialog
          title="New workspace"
          submitLabel="Create workspace"
          onClose={() => setCreating(false)}
          onSave={async (name) => {
            await call(() =>
              api.POST("/api/orgs/{org_slug}/workspaces", { params: { path: { org_slug: org.slug } }, body: { name } }),
            );
            toast.success(`Workspace ${name} created.`);
            list.reload();
          }}
        />
      ) : null}
      {renaming ? (
        <WorkspaceNameDialog
          title={`Rename ${renaming.name}`}
          submitLabel="Rename"
          initial={renaming.name}
          onClose={() => setRenaming(null)}
          onSave={async (name) => {
            await patchWorkspace(org.slug, renaming.id, { name });
            toast.success(`Renamed to ${name}.`);
            list.reload();
          }}
        />
      ) : null}
      {archiving ? (
        <ConfirmDialog
          title={`Archive ${archiving.name}?`}
          description="It disappears from the workspace list (turn on “Show archived” to find it). You can restore it at any time."
          confirmLabel="Archive"
          onClose={() => setArchiving(null)}
          onConfirm={async () => {
            await patchWorkspace(org.slug, archiving.id, { archived: true });
            toast.success(`${archiving.name} archived.`);
            list.reload();
          }}
        />
      ) : null}
    </>
  );
}

export function patchWorkspace(orgSlug: string, wsId: string, body: { name?: string; archived?: boolean }) {
  return call(() =>
    api.PATCH("/api/orgs/{org_slug}/workspaces/{ws_id}", {
      params: { path: { org_slug: orgSlug, ws_id: wsId } },
      body,
    }),
  );
}

export function WorkspaceNameDialog({
  title,
  submitLabel,
  initial = "",
  onSave,
  onClose,
}: {
  title: string;
  submitLabel: string;
  initial?: string;
  onSave: (name: string) => Promise<void>;
  onClose: () => void;
}) {
  const [name, setName] = useState(initial);
  const submit = useSubmit(["name"]);
  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    if (await submit.run(() => onSave(name.trim()))) onClose();
  };
  return (
    <Dialog title={title} onClose={onClose}>
      <form className="stack" onSubmit={onSubmit} noValidate aria-label={title}>
        {submit.error ? <Alert>{submit.error}</Alert> : null}
        <TextField
          label="Workspace name"
          name="name"
          required
          maxLength={100}
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={submit.fields.name}
        />
        <div className="form-actions">
          <Button variant="ghost" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" variant="primary" busy={submit.busy}>
            {submitLabel}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
