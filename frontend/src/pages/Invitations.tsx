import { useState, type FormEvent } from "react";
import { api, call, type Invitation, type InvitationCreated, type OrgRole, type WorkspaceRole } from "../api/client";
import { PagedTable } from "../components/DataTable";
import { useToast } from "../components/toast";
import {
  Alert,
  Badge,
  Button,
  ConfirmDialog,
  CopyField,
  EmptyState,
  PageHeader,
  RoleBadge,
  RoleOptions,
  SelectField,
  TextField,
  formatDate,
} from "../components/ui";
import { usePaged, useSubmit } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { ORG_ROLE_HELP, WORKSPACE_ROLES, assignableOrgRoles } from "../lib/permissions";
import { useWorkspaceNames } from "../lib/workspaces";

const STATUS_TONE: Record<string, string> = { open: "success", accepted: "muted", revoked: "danger", expired: "warn" };

export function InvitationsPage() {
  const { org, role } = useOrg();
  const toast = useToast();
  const [includeClosed, setIncludeClosed] = useState(false);
  const [revoking, setRevoking] = useState<Invitation | null>(null);
  const [created, setCreated] = useState<InvitationCreated | null>(null);
  const { workspaces, names } = useWorkspaceNames(org.slug);
  const workspaceName = (id: string | null) => (id ? (names.get(id) ?? "a workspace") : null);
  const list = usePaged(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/invitations", {
          params: {
            path: { org_slug: org.slug },
            query: { include_closed: includeClosed, cursor: cursor ?? undefined, page_size: 50 },
          },
        }),
      ),
    [org.slug, includeClosed],
  );

  // Invite form
  const roles = assignableOrgRoles(role);
  const [email, setEmail] = useState("");
  const [inviteRole, setInviteRole] = useState<OrgRole>("member");
  const [workspaceId, setWorkspaceId] = useState("");
  const [workspaceRole, setWorkspaceRole] = useState<WorkspaceRole>("viewer");
  const submit = useSubmit(["email", "role", "workspace_id", "workspace_role"]);

  const onInvite = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const invitation = await call(() =>
        api.POST("/api/orgs/{org_slug}/invitations", {
          params: { path: { org_slug: org.slug } },
          body: {
            email,
            role: inviteRole,
            workspace_id: workspaceId || null,
            workspace_role: workspaceId ? workspaceRole : null,
          },
        }),
      );
      setCreated(invitation);
      setEmail("");
      toast.success(`Invitation sent to ${invitation.email}.`);
      list.reload();
    });
  };

  return (
    <>
      <PageHeader title="Invitations" description="Invite people by email. Links are valid for 7 days." />
      <section className="card" aria-label="Invite someone">
        <div className="card-header">
          <h2>Invite someone</h2>
        </div>
        <div className="card-body">
          <form className="stack" onSubmit={onInvite} noValidate aria-label="Invite">
            {submit.error ? <Alert testId="form-error">{submit.error}</Alert> : null}
            <div className="form-grid">
              <TextField
                label="Email"
                name="email"
                type="email"
                required
                placeholder="name@company.com"
                value={email}
                onChange={(e) => setEmail(e.target.value)}
                error={submit.fields.email}
              />
              <SelectField
                label="Organisation role"
                name="role"
                value={inviteRole}
                onChange={(e) => setInviteRole(e.target.value as OrgRole)}
                error={submit.fields.role}
                hint={ORG_ROLE_HELP[inviteRole]}
              >
                <RoleOptions roles={roles} />
              </SelectField>
              <SelectField
                label="Workspace (optional)"
                name="workspace_id"
                value={workspaceId}
                onChange={(e) => setWorkspaceId(e.target.value)}
                error={submit.fields.workspace_id}
              >
                <option value="">No workspace</option>
                {workspaces.map((w) => (
                  <option key={w.id} value={w.id}>
                    {w.name}
                  </option>
                ))}
              </SelectField>
              <SelectField
                label="Workspace role"
                name="workspace_role"
                value={workspaceRole}
                disabled={!workspaceId}
                onChange={(e) => setWorkspaceRole(e.target.value as WorkspaceRole)}
                error={submit.fields.workspace_role}
              >
                <RoleOptions roles={WORKSPACE_ROLES} />
              </SelectField>
            </div>
            <div className="form-actions">
              <Button type="submit" variant="primary" busy={submit.busy}>
                Send invitation
              </Button>
            </div>
          </form>
          {created ? (
            <div className="stack" style={{ marginTop: 16 }} data-testid="invitation-created">
              <Alert kind="success">
                We mailed an invitation to <strong>{created.email}</strong>. You can also share this link with them
                (anyone holding it can join as that email):
              </Alert>
              <CopyField value={created.accept_url} label="Invitation link" testId="accept-url" />
            </div>
          ) : null}
        </div>
      </section>

      <section className="card" aria-label="Invitations">
        <div className="card-header">
          <h2>{includeClosed ? "All invitations" : "Open invitations"}</h2>
          <label className="checkbox">
            <input type="checkbox" checked={includeClosed} onChange={(e) => setIncludeClosed(e.target.checked)} />
            Show accepted, revoked and expired
          </label>
        </div>
        <PagedTable
          list={list}
          empty={
            <EmptyState title="No invitations">Invitations you send appear here until they are accepted.</EmptyState>
          }
          columns={["Email", "Role", "Workspace", "Invited by", "Expires", "Status"]}
          actions
          row={(inv) => (
            <tr key={inv.id} data-testid="invitation-row" className={inv.status !== "open" ? "is-dim" : undefined}>
              <td>{inv.email}</td>
              <td>
                <RoleBadge role={inv.role} />
              </td>
              <td>
                {inv.workspace_id ? (
                  <>
                    {workspaceName(inv.workspace_id)} <span className="muted">({inv.workspace_role})</span>
                  </>
                ) : (
                  <span className="muted">—</span>
                )}
              </td>
              <td>{inv.invited_by ?? "—"}</td>
              <td className="nowrap">{formatDate(inv.expires_at)}</td>
              <td>
                <Badge tone={STATUS_TONE[inv.status]}>{inv.status}</Badge>
              </td>
              <td className="actions">
                {inv.status === "open" ? (
                  <Button
                    size="sm"
                    variant="danger-ghost"
                    onClick={() => setRevoking(inv)}
                    aria-label={`Revoke invitation for ${inv.email}`}
                  >
                    Revoke
                  </Button>
                ) : null}
              </td>
            </tr>
          )}
        />
      </section>
      {revoking ? (
        <ConfirmDialog
          title={`Revoke the invitation for ${revoking.email}?`}
          description="The link stops working at once. You can invite them again later."
          confirmLabel="Revoke invitation"
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await call(() =>
              api.DELETE("/api/orgs/{org_slug}/invitations/{invitation_id}", {
                params: { path: { org_slug: org.slug, invitation_id: revoking.id } },
              }),
            );
            toast.success(`Invitation for ${revoking.email} revoked.`);
            if (created?.id === revoking.id) setCreated(null);
            list.reload();
          }}
        />
      ) : null}
    </>
  );
}
