import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call, type Workspace } from "../api/client";
import { PagedTable } from "../components/DataTable";
import { useToast } from "../components/toast";
import {
  Badge,
  Button,
  ConfirmDialog,
  EmptyState,
  FormDialog,
  PageHeader,
  RoleBadge,
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

  const restore = useRestoreWorkspace(list.reload);

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
        <PagedTable
          list={list}
          empty={
            <EmptyState title="No workspaces yet">
              {can.createWorkspace(role)
                ? "Create one to start building flows."
                : "Ask an owner or admin of the organisation to give you a role on a workspace."}
            </EmptyState>
          }
          columns={["Name", "Your role", "Created", "Status"]}
          actions
          row={(ws) => (
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
          )}
        />
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
        <RenameWorkspaceDialog workspace={renaming} onClose={() => setRenaming(null)} onDone={list.reload} />
      ) : null}
      {archiving ? (
        <ArchiveWorkspaceDialog workspace={archiving} onClose={() => setArchiving(null)} onDone={list.reload} />
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

type WorkspaceRef = Pick<Workspace, "id" | "name">;

/** What the rename and archive dialogs act on; `onDone` runs after the change succeeded. */
interface WorkspaceActionProps {
  workspace: WorkspaceRef;
  onClose: () => void;
  onDone: () => void;
}

/** Restore an archived workspace, then `onDone()`; a refusal shows as a toast. */
export function useRestoreWorkspace(onDone: () => void) {
  const { org } = useOrg();
  const toast = useToast();
  return async (ws: WorkspaceRef) => {
    try {
      await patchWorkspace(org.slug, ws.id, { archived: false });
      toast.success(`${ws.name} restored.`);
      onDone();
    } catch (err) {
      toast.error((err as Error).message);
    }
  };
}

export function RenameWorkspaceDialog({ workspace, onClose, onDone }: WorkspaceActionProps) {
  const { org } = useOrg();
  const toast = useToast();
  return (
    <WorkspaceNameDialog
      title={`Rename ${workspace.name}`}
      submitLabel="Rename"
      initial={workspace.name}
      onClose={onClose}
      onSave={async (name) => {
        await patchWorkspace(org.slug, workspace.id, { name });
        toast.success(`Renamed to ${name}.`);
        onDone();
      }}
    />
  );
}

export function ArchiveWorkspaceDialog({ workspace, onClose, onDone }: WorkspaceActionProps) {
  const { org } = useOrg();
  const toast = useToast();
  return (
    <ConfirmDialog
      title={`Archive ${workspace.name}?`}
      description="It disappears from the workspace list (turn on “Show archived” to find it). You can restore it at any time."
      confirmLabel="Archive"
      onClose={onClose}
      onConfirm={async () => {
        await patchWorkspace(org.slug, workspace.id, { archived: true });
        toast.success(`${workspace.name} archived.`);
        onDone();
      }}
    />
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
    <FormDialog title={title} onClose={onClose} onSubmit={onSubmit} submit={submit} submitLabel={submitLabel}>
      <TextField
        label="Workspace name"
        name="name"
        required
        maxLength={100}
        value={name}
        onChange={(e) => setName(e.target.value)}
        error={submit.fields.name}
      />
    </FormDialog>
  );
}
