import { useState, type FormEvent } from "react";
import { api, call, type ApiKey, type ApiKeyCreated } from "../api/client";
import { PagedTable } from "../components/DataTable";
import {
  Badge,
  Button,
  EmptyState,
  FormDialog,
  RevokeKeyDialog,
  KeyShownOnceDialog,
  PageHeader,
  RoleBadge,
  RoleOptions,
  SelectField,
  TextField,
  formatDate,
  relativeTime,
} from "../components/ui";
import { usePaged, useSubmit } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { isManager, keyOrgRoles, keyWorkspaceRoles } from "../lib/permissions";
import { useWorkspaceNames } from "../lib/workspaces";

export function ApiKeysPage() {
  const { org, role } = useOrg();
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const { workspaces, names: workspaceNames } = useWorkspaceNames(org.slug, { includeArchived: true });
  const list = usePaged(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/api-keys", {
          params: { path: { org_slug: org.slug }, query: { cursor: cursor ?? undefined, page_size: 50 } },
        }),
      ),
    [org.slug],
  );

  return (
    <>
      <PageHeader
        title="API keys"
        description={
          isManager(role)
            ? "Keys act for the person who made them, capped at a role. You see every key of the organisation."
            : "Keys act for you, capped at a role and optionally scoped to one workspace."
        }
        actions={
          <Button variant="primary" onClick={() => setCreating(true)}>
            Create API key
          </Button>
        }
      />
      <section className="card" aria-label="API keys">
        <PagedTable
          list={list}
          empty={<EmptyState title="No API keys">Create one to call the FireFlow API from a program.</EmptyState>}
          className="table table-dense"
          columns={["Name", "Scope", "Role cap", isManager(role) && "Owner", "Created", "Last used", "Status"]}
          actions
          row={(key) => (
            <tr key={key.id} className={key.revoked ? "is-dim" : undefined} data-testid="api-key-row">
              <td>
                <strong className="nowrap">{key.name}</strong>
                <div>
                  <code className="muted">{key.prefix}…</code>
                </div>
              </td>
              <td>
                {key.workspace_id ? (
                  <>Workspace: {workspaceNames.get(key.workspace_id) ?? "unknown"}</>
                ) : (
                  "Organisation"
                )}
              </td>
              <td>
                <RoleBadge role={key.role} />
              </td>
              {isManager(role) ? <td className="small">{key.user_email}</td> : null}
              <td className="small nowrap">{formatDate(key.created_at)}</td>
              <td className="small nowrap" title={key.last_used_at ?? undefined}>
                {relativeTime(key.last_used_at)}
              </td>
              <td>{key.revoked ? <Badge tone="danger">Revoked</Badge> : <Badge tone="success">Active</Badge>}</td>
              <td className="actions">
                {!key.revoked ? (
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
            </tr>
          )}
        />
      </section>
      {creating ? (
        <CreateKeyDialog
          workspaces={workspaces.filter((w) => !w.archived && w.role)}
          onCreated={() => list.reload()}
          onClose={() => setCreating(false)}
        />
      ) : null}
      {revoking ? (
        <RevokeKeyDialog
          name={revoking.name}
          prefix={revoking.prefix}
          onClose={() => setRevoking(null)}
          revoke={async () => {
            await call(() =>
              api.DELETE("/api/orgs/{org_slug}/api-keys/{key_id}", {
                params: { path: { org_slug: org.slug, key_id: revoking.id } },
              }),
            );
            list.reload();
          }}
        />
      ) : null}
    </>
  );
}

function CreateKeyDialog({
  workspaces,
  onCreated,
  onClose,
}: {
  workspaces: { id: string; name: string; role: string | null }[];
  onCreated: () => void;
  onClose: () => void;
}) {
  const { org, role: orgRole } = useOrg();
  const [name, setName] = useState("");
  const [scope, setScope] = useState(""); // "" = organisation, else a workspace id
  const workspace = workspaces.find((w) => w.id === scope);
  const roles: string[] = workspace
    ? keyWorkspaceRoles(workspace.role as Parameters<typeof keyWorkspaceRoles>[0])
    : keyOrgRoles(orgRole);
  const [role, setRole] = useState("");
  const chosenRole = roles.includes(role) ? role : (roles[0] ?? "");
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const submit = useSubmit(["name", "role", "workspace_id"]);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const key = await call(() =>
        api.POST("/api/orgs/{org_slug}/api-keys", {
          params: { path: { org_slug: org.slug } },
          body: { name, role: chosenRole, workspace_id: scope || null },
        }),
      );
      setCreated(key);
      onCreated();
    });
  };

  if (created) {
    return (
      <KeyShownOnceDialog
        title="Copy your new API key"
        label="API key"
        value={created.key}
        testId="api-key-created"
        secretTestId="api-key-secret"
        onClose={onClose}
      >
        Programs send it in a header: <code>Authorization: Bearer &lt;key&gt;</code>
      </KeyShownOnceDialog>
    );
  }

  return (
    <FormDialog
      title="Create API key"
      description="The key acts for you, never above your own role."
      onClose={onClose}
      onSubmit={onSubmit}
      submit={submit}
      submitLabel="Create key"
      submitDisabled={!chosenRole}
    >
      <TextField
        label="Name"
        name="name"
        required
        placeholder="CI deploy"
        value={name}
        onChange={(e) => setName(e.target.value)}
        error={submit.fields.name}
      />
      <SelectField
        label="Scope"
        name="workspace_id"
        value={scope}
        onChange={(e) => setScope(e.target.value)}
        error={submit.fields.workspace_id}
      >
        <option value="">Whole organisation</option>
        {workspaces.map((w) => (
          <option key={w.id} value={w.id}>
            Workspace: {w.name}
          </option>
        ))}
      </SelectField>
      <SelectField
        label="Role cap"
        name="role"
        value={chosenRole}
        onChange={(e) => setRole(e.target.value)}
        error={submit.fields.role}
        hint={workspace ? "A workspace role on this workspace." : "An organisation role."}
      >
        <RoleOptions roles={roles} />
      </SelectField>
    </FormDialog>
  );
}
