import { useState } from "react";
import { useNavigate } from "react-router";
import { api, call, type Member, type OrgRole } from "../api/client";
import { PagedTable } from "../components/DataTable";
import { useToast } from "../components/toast";
import { Button, ConfirmDialog, EmptyState, PageHeader, PersonCell, RoleBadge, RoleOptions, formatDate } from "../components/ui";
import { useAuth } from "../lib/auth";
import { usePaged } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { ORG_ROLE_HELP, assignableOrgRoles, can } from "../lib/permissions";

export function MembersPage() {
  const { org, role } = useOrg();
  const { me, refresh } = useAuth();
  const toast = useToast();
  const navigate = useNavigate();
  const [removing, setRemoving] = useState<Member | null>(null);
  const [saving, setSaving] = useState<string | null>(null);
  const list = usePaged(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/members", {
          params: { path: { org_slug: org.slug }, query: { cursor: cursor ?? undefined, page_size: 100 } },
        }),
      ),
    [org.slug],
  );

  const changeRole = async (member: Member, newRole: OrgRole) => {
    setSaving(member.id);
    try {
      await call(() =>
        api.PATCH("/api/orgs/{org_slug}/members/{member_id}", {
          params: { path: { org_slug: org.slug, member_id: member.id } },
          body: { role: newRole },
        }),
      );
      toast.success(`${member.user.email} is now ${newRole}.`);
    } catch (err) {
      toast.error((err as Error).message);
    } finally {
      setSaving(null);
      list.reload();
    }
  };

  const isMe = (member: Member) => member.user.id === me?.user.id;

  return (
    <>
      <PageHeader title="Members" description={`People in ${org.name} and their organisation role.`} />
      <section className="card" aria-label="Members">
        <PagedTable
          list={list}
          empty={<EmptyState title="No members" />}
          columns={["Member", "Role", "Joined"]}
          actions
          row={(member) => {
            const editable = can.changeRoleOf(role, member.role);
            const options = assignableOrgRoles(role);
            return (
              <tr key={member.id} data-testid="member-row" data-email={member.user.email}>
                <td>
                  <PersonCell user={member.user} isMe={isMe(member)} />
                </td>
                <td>
                  {editable ? (
                    <select
                      className="select select-sm"
                      aria-label={`Role of ${member.user.email}`}
                      value={member.role}
                      disabled={saving === member.id}
                      title={ORG_ROLE_HELP[member.role]}
                      onChange={(e) => changeRole(member, e.target.value as OrgRole)}
                    >
                      <RoleOptions roles={options.includes(member.role) ? options : [member.role, ...options]} />
                    </select>
                  ) : (
                    <RoleBadge role={member.role} />
                  )}
                </td>
                <td className="nowrap">{formatDate(member.joined_at)}</td>
                <td className="actions">
                  {isMe(member) ? (
                    <Button size="sm" variant="danger-ghost" onClick={() => setRemoving(member)}>
                      Leave
                    </Button>
                  ) : can.removeMember(role, member.role) ? (
                    <Button
                      size="sm"
                      variant="danger-ghost"
                      onClick={() => setRemoving(member)}
                      aria-label={`Remove ${member.user.email}`}
                    >
                      Remove
                    </Button>
                  ) : null}
                </td>
              </tr>
            );
          }}
        />
      </section>
      {removing ? (
        <ConfirmDialog
          title={isMe(removing) ? `Leave ${org.name}?` : `Remove ${removing.user.email}?`}
          description={
            isMe(removing)
              ? "You will lose access to its workspaces, and your API keys in it will be revoked."
              : "They lose access to every workspace, their API keys in this organisation are revoked, and their open invitations are closed."
          }
          confirmLabel={isMe(removing) ? "Leave organisation" : "Remove member"}
          onClose={() => setRemoving(null)}
          onConfirm={async () => {
            const leaving = isMe(removing);
            await call(() =>
              api.DELETE("/api/orgs/{org_slug}/members/{member_id}", {
                params: { path: { org_slug: org.slug, member_id: removing.id } },
              }),
            );
            if (leaving) {
              toast.success(`You left ${org.name}.`);
              await refresh();
              navigate("/", { replace: true });
            } else {
              toast.success(`${removing.user.email} removed.`);
              list.reload();
            }
          }}
        />
      ) : null}
    </>
  );
}
