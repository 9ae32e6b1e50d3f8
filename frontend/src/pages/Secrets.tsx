/**
 * Secrets: the signed-in user's personal secrets in the organisation, and a workspace's shared
 * ones. Values go in (add, rotate) and never come back: the API does not return them and this
 * page keeps a typed value only until it is sent.
 */
import { Fragment, useId, useMemo, useState, type FormEvent, type ReactNode } from "react";
import { Link, useSearchParams } from "react-router";
import { ApiError, api, call, type Schemas, type Workspace } from "../api/client";
import { DataTable, LoadState } from "../components/DataTable";
import { useToast } from "../components/toast";
import {
  Alert,
  Button,
  ConfirmDialog,
  EmptyState,
  FormDialog,
  PageHeader,
  TextField,
  formatDate,
  relativeTime,
} from "../components/ui";
import { useAsync, useSubmit } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { can } from "../lib/permissions";

type Secret = Schemas["SecretOut"];
type SecretIn = Schemas["SecretIn"];
type SecretUse = Schemas["SecretUseOut"];
type KeyRotation = Schemas["KeyRotationOut"];

const NO_WORKSPACES: Workspace[] = [];

/** One vault's calls: the user's own in the organisation, or a workspace's shared one. */
interface Vault {
  list: () => Promise<Secret[]>;
  create: (body: SecretIn) => Promise<Secret>;
  rotate: (secretId: string, value: string) => Promise<Secret>;
  remove: (secretId: string) => Promise<void>;
  /** A new key epoch for the vault's owner (the user, or the workspace); every secret re-encrypted. */
  rotateKey: () => Promise<KeyRotation>;
  /** The secret's last uses by runs. */
  uses: (secretId: string) => Promise<SecretUse[]>;
  /** The console page of a run that used a secret, when the vault knows the run's workspace. */
  runPath?: (runId: string) => string;
}

function personalVault(orgSlug: string): Vault {
  const org = { org_slug: orgSlug };
  return {
    list: () => call(() => api.GET("/api/orgs/{org_slug}/secrets", { params: { path: org } })),
    create: (body) => call(() => api.POST("/api/orgs/{org_slug}/secrets", { params: { path: org }, body })),
    rotate: (secretId, value) =>
      call(() =>
        api.PUT("/api/orgs/{org_slug}/secrets/{secret_id}/value", {
          params: { path: { ...org, secret_id: secretId } },
          body: { value },
        }),
      ),
    remove: (secretId) =>
      call(() =>
        api.DELETE("/api/orgs/{org_slug}/secrets/{secret_id}", { params: { path: { ...org, secret_id: secretId } } }),
      ),
    rotateKey: () => call(() => api.POST("/api/orgs/{org_slug}/secrets/rotate-key", { params: { path: org } })),
    uses: (secretId) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/secrets/{secret_id}/uses", { params: { path: { ...org, secret_id: secretId } } }),
      ),
    // A personal secret is used by runs in any workspace, and a use does not say which one.
  };
}

function sharedVault(orgSlug: string, wsId: string): Vault {
  const ws = { org_slug: orgSlug, ws_id: wsId };
  return {
    list: () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/secrets", { params: { path: ws } })),
    create: (body) =>
      call(() => api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/secrets", { params: { path: ws }, body })),
    rotate: (secretId, value) =>
      call(() =>
        api.PUT("/api/orgs/{org_slug}/workspaces/{ws_id}/secrets/{secret_id}/value", {
          params: { path: { ...ws, secret_id: secretId } },
          body: { value },
        }),
      ),
    remove: (secretId) =>
      call(() =>
        api.DELETE("/api/orgs/{org_slug}/workspaces/{ws_id}/secrets/{secret_id}", {
          params: { path: { ...ws, secret_id: secretId } },
        }),
      ),
    rotateKey: () =>
      call(() => api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/secrets/rotate-key", { params: { path: ws } })),
    uses: (secretId) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/secrets/{secret_id}/uses", {
          params: { path: { ...ws, secret_id: secretId } },
        }),
      ),
    runPath: (runId) => `/orgs/${orgSlug}/workspaces/${wsId}/runs/${runId}`,
  };
}

const NAME_HINT = "Letters, digits, '_', '-' or '.', starting with a letter. Nodes refer to the secret by this name.";

/** A taken name (409) is a problem with the name input: show it there, like a validation error. */
function duplicateNameAsFieldError(err: unknown): unknown {
  if (err instanceof ApiError && err.status === 409) {
    return new ApiError(err.status, err.detail, "invalid", { name: err.detail });
  }
  return err;
}

export function SecretsPage() {
  const { org, role } = useOrg();
  const [params, setParams] = useSearchParams();
  // Loaded here rather than with useWorkspaceNames: "no workspace" must wait for the answer.
  const loaded = useAsync(
    () =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces", {
          params: { path: { org_slug: org.slug }, query: { page_size: 200 } },
        }),
      ),
    [org.slug],
  );
  const workspaces = loaded.data?.results ?? NO_WORKSPACES;
  const chosen = params.get("workspace");
  const workspace = workspaces.find((w) => w.id === chosen) ?? workspaces[0];
  const pickerId = useId();
  const personal = useMemo(() => personalVault(org.slug), [org.slug]);
  const shared = useMemo(
    () => (workspace ? sharedVault(org.slug, workspace.id) : null),
    [org.slug, workspace],
  );

  return (
    <>
      <PageHeader
        title="Secrets"
        description={
          <>
            Nodes use a secret by its name: in <code>api_key_secret</code> (LLM nodes) or <code>secret_headers</code>{" "}
            (HTTP node). Values are stored sealed and never shown again.
          </>
        }
      />
      <SecretsSection
        vault={personal}
        vaultKey={`personal:${org.slug}`}
        title="Your secrets"
        description="Only you can see and use these, in flows you own in this organisation."
        ownerColumn="Owner"
        ownerOf={(s) => s.owner_email}
        canManage
        keyOwner="of yours"
        formLabel="Add a secret of yours"
        testId="personal-secrets"
      />
      {shared && workspace ? (
        <SecretsSection
          // A fresh section per workspace: no half-typed form or open dialog carries over.
          key={workspace.id}
          vault={shared}
          vaultKey={`shared:${org.slug}:${workspace.id}`}
          title={`Shared with ${workspace.name}`}
          description="Every member of the workspace can see these names; its flows can use them."
          picker={
            <div className="row">
              <label className="label" htmlFor={pickerId}>
                Workspace
              </label>
              <select
                id={pickerId}
                className="select select-sm"
                value={workspace.id}
                onChange={(e) => setParams({ workspace: e.target.value }, { replace: true })}
              >
                {workspaces.map((w) => (
                  <option key={w.id} value={w.id}>
                    {w.name}
                  </option>
                ))}
              </select>
            </div>
          }
          ownerColumn="Created by"
          ownerOf={(s) => s.created_by_email}
          canManage={can.manageWorkspace(role, workspace.role)}
          keyOwner={`shared with ${workspace.name}`}
          readOnlyNote={`Only owners of ${workspace.name} (and organisation owners and admins) add, rotate or delete its shared secrets.`}
          formLabel={`Add a secret shared with ${workspace.name}`}
          testId="shared-secrets"
        />
      ) : (
        <section className="card" aria-label="Shared secrets">
          <div className="card-header">
            <h2>Shared with a workspace</h2>
          </div>
          <LoadState error={loaded.error} loading={loaded.loading}>
            {() => (
              <EmptyState title="No workspace">You have no workspace whose shared secrets you could see.</EmptyState>
            )}
          </LoadState>
        </section>
      )}
    </>
  );
}

function SecretsSection({
  vault,
  vaultKey,
  title,
  description,
  picker,
  ownerColumn,
  ownerOf,
  canManage,
  keyOwner,
  readOnlyNote,
  formLabel,
  testId,
}: {
  vault: Vault;
  /** Changes exactly when `vault` points somewhere else, so the list reloads. */
  vaultKey: string;
  title: string;
  description: ReactNode;
  picker?: ReactNode;
  ownerColumn: string;
  ownerOf: (secret: Secret) => string | null;
  canManage: boolean;
  /** Whose secrets the vault key seals, after "every secret": "of yours", "shared with Research". */
  keyOwner: string;
  readOnlyNote?: string;
  formLabel: string;
  testId: string;
}) {
  const toast = useToast();
  const headingId = useId();
  const list = useAsync(() => vault.list(), [vaultKey]);
  const [rotating, setRotating] = useState<Secret | null>(null);
  const [deleting, setDeleting] = useState<Secret | null>(null);
  const [confirmingKeyRotation, setConfirmingKeyRotation] = useState(false);
  const [keyRotated, setKeyRotated] = useState<KeyRotation | null>(null);
  const [usesOf, setUsesOf] = useState<string | null>(null);
  const usesIdPrefix = useId();
  const columns = ["Name", "Description", ownerColumn, "Created", "Rotated", "Last used"];

  return (
    <section className="card" aria-labelledby={headingId} data-testid={testId}>
      <div className="card-header">
        <div>
          <h2 id={headingId}>{title}</h2>
          <p>{description}</p>
        </div>
        {picker || canManage ? (
          <div className="row">
            {picker}
            {canManage ? (
              <Button size="sm" onClick={() => setConfirmingKeyRotation(true)}>
                Rotate key
              </Button>
            ) : null}
          </div>
        ) : null}
      </div>
      {keyRotated ? (
        <div className="card-body secrets-key-rotated">
          <Alert kind="success" testId="key-rotated">
            Key rotated: epoch {keyRotated.epoch}, {keyRotated.rewrapped}{" "}
            {keyRotated.rewrapped === 1 ? "secret" : "secrets"} re-encrypted.
          </Alert>
        </div>
      ) : null}
      <LoadState error={list.error} loading={list.loading}>
        {() =>
          list.data && list.data.length > 0 ? (
            <DataTable className="table table-dense" columns={columns} actions>
              {list.data.map((secret) => {
                const usesId = `${usesIdPrefix}-${secret.id}`;
                const showingUses = usesOf === secret.id;
                return (
                  <Fragment key={secret.id}>
                    <tr data-testid="secret-row" data-name={secret.name}>
                      <td>
                        <code className="nowrap">{secret.name}</code>
                      </td>
                      <td className="small">{secret.description || <span className="muted">—</span>}</td>
                      <td className="small">{ownerOf(secret) ?? <span className="muted">—</span>}</td>
                      <td className="small nowrap">{formatDate(secret.created_at)}</td>
                      <td className="small nowrap" title={secret.rotated_at ?? undefined}>
                        {relativeTime(secret.rotated_at)}
                      </td>
                      <td className="small nowrap" title={secret.last_used_at ?? undefined}>
                        {relativeTime(secret.last_used_at)}
                      </td>
                      <td className="actions">
                        <Button
                          size="sm"
                          variant="ghost"
                          onClick={() => setUsesOf(showingUses ? null : secret.id)}
                          aria-label={`Uses of ${secret.name}`}
                          aria-expanded={showingUses}
                          aria-controls={showingUses ? usesId : undefined}
                        >
                          Uses
                        </Button>
                        {canManage ? (
                          <>
                            <Button size="sm" onClick={() => setRotating(secret)} aria-label={`Rotate ${secret.name}`}>
                              Rotate
                            </Button>
                            <Button
                              size="sm"
                              variant="danger-ghost"
                              onClick={() => setDeleting(secret)}
                              aria-label={`Delete ${secret.name}`}
                            >
                              Delete
                            </Button>
                          </>
                        ) : null}
                      </td>
                    </tr>
                    {showingUses ? (
                      <tr className="secret-uses-row">
                        <td colSpan={columns.length + 1} id={usesId}>
                          <SecretUses vault={vault} secret={secret} />
                        </td>
                      </tr>
                    ) : null}
                  </Fragment>
                );
              })}
            </DataTable>
          ) : (
            <EmptyState title="No secrets yet">
              {canManage ? "Add one below; nodes then refer to it by its name." : "None has been added here."}
            </EmptyState>
          )
        }
      </LoadState>
      <div className="card-body secrets-add">
        {canManage ? (
          <AddSecretForm vault={vault} label={formLabel} onAdded={list.reload} />
        ) : (
          <p className="small muted" style={{ margin: 0 }}>
            {readOnlyNote}
          </p>
        )}
      </div>
      {rotating ? (
        <RotateSecretDialog
          vault={vault}
          secret={rotating}
          onClose={() => setRotating(null)}
          onRotated={() => {
            toast.success(`${rotating.name} rotated.`);
            list.reload();
          }}
        />
      ) : null}
      {confirmingKeyRotation ? (
        <ConfirmDialog
          title="Rotate the key?"
          description={
            <>
              Re-encrypts every secret {keyOwner} under a new key; values do not change. Nodes keep using the
              secrets by their names: nothing else needs updating.
            </>
          }
          confirmLabel="Rotate key"
          danger={false}
          onClose={() => setConfirmingKeyRotation(false)}
          onConfirm={async () => {
            setKeyRotated(null);
            setKeyRotated(await vault.rotateKey());
            list.reload();
          }}
        />
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title={`Delete ${deleting.name}?`}
          description={
            <>
              Nodes that name <code>{deleting.name}</code> can no longer use this value. This cannot be undone.
            </>
          }
          confirmLabel="Delete secret"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await vault.remove(deleting.id);
            toast.success(`${deleting.name} deleted.`);
            list.reload();
          }}
        />
      ) : null}
    </section>
  );
}

function AddSecretForm({ vault, label, onAdded }: { vault: Vault; label: string; onAdded: () => void }) {
  const toast = useToast();
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [description, setDescription] = useState("");
  const submit = useSubmit(["name", "value", "description"]);
  const headingId = useId();

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const secret = await vault.create({ name, value, description }).catch((err: unknown) => {
        throw duplicateNameAsFieldError(err);
      });
      setName("");
      setDescription("");
      toast.success(`${secret.name} stored.`);
      onAdded();
    });
    // Sent or refused, the value does not stay on the page.
    setValue("");
  };

  return (
    <form className="stack" onSubmit={onSubmit} noValidate aria-labelledby={headingId}>
      <h3 id={headingId}>{label}</h3>
      {submit.error ? <Alert>{submit.error}</Alert> : null}
      <div className="form-grid">
        <TextField
          label="Name"
          name="name"
          required
          maxLength={100}
          autoComplete="off"
          spellCheck={false}
          placeholder="OPENAI_API_KEY"
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={submit.fields.name}
          hint={NAME_HINT}
        />
        <TextField
          label="Value"
          name="value"
          type="password"
          required
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          error={submit.fields.value}
          hint="Stored sealed; never shown again."
        />
        <TextField
          label="Description (optional)"
          name="description"
          maxLength={500}
          value={description}
          onChange={(e) => setDescription(e.target.value)}
          error={submit.fields.description}
        />
      </div>
      <div className="form-actions">
        <Button type="submit" variant="primary" busy={submit.busy}>
          Add secret
        </Button>
      </div>
    </form>
  );
}

function RotateSecretDialog({
  vault,
  secret,
  onClose,
  onRotated,
}: {
  vault: Vault;
  secret: Secret;
  onClose: () => void;
  onRotated: () => void;
}) {
  const [value, setValue] = useState("");
  const submit = useSubmit(["value"]);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const done = await submit.run(async () => {
      await vault.rotate(secret.id, value);
    });
    // Sent or refused, the value does not stay on the page.
    setValue("");
    if (done) {
      onRotated();
      onClose();
    }
  };

  return (
    <FormDialog
      title={`Rotate ${secret.name}`}
      description="Nodes that name it use the new value from their next run. The old value is discarded."
      onClose={onClose}
      onSubmit={onSubmit}
      submit={submit}
      submitLabel="Rotate"
    >
      <TextField
        label="New value"
        name="value"
        type="password"
        required
        autoComplete="off"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        error={submit.fields.value}
      />
    </FormDialog>
  );
}

/** A secret's last uses by runs: when, which run and node, started by whom. */
function SecretUses({ vault, secret }: { vault: Vault; secret: Secret }) {
  const uses = useAsync(() => vault.uses(secret.id), [secret.id]);
  return (
    <div className="secret-uses" data-testid="secret-uses">
      <LoadState error={uses.error} loading={uses.loading}>
        {() =>
          uses.data && uses.data.length > 0 ? (
            <table className="table table-dense" aria-label={`Last uses of ${secret.name}`}>
              <thead>
                <tr>
                  <th>When</th>
                  <th>Run</th>
                  <th>Node</th>
                  <th>Caller</th>
                </tr>
              </thead>
              <tbody>
                {uses.data.map((use, index) => (
                  <tr key={`${use.at}-${use.run_id ?? ""}-${use.node_id ?? ""}-${index}`} data-testid="secret-use">
                    <td className="small nowrap" title={use.at}>
                      {formatDate(use.at)}
                    </td>
                    <td className="small">
                      {use.run_id ? (
                        vault.runPath ? (
                          <Link to={vault.runPath(use.run_id)}>
                            <code>{use.run_id}</code>
                          </Link>
                        ) : (
                          <code>{use.run_id}</code>
                        )
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td className="small">{use.node_id ? <code>{use.node_id}</code> : <span className="muted">—</span>}</td>
                    <td className="small">{use.caller_email ?? <span className="muted">—</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="small muted secret-uses-empty">Not used by any run yet.</p>
          )
        }
      </LoadState>
    </div>
  );
}
