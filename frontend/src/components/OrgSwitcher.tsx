import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api, call, type Me, type Org } from "../api/client";
import { homeSection } from "../lib/permissions";
import { useAuth } from "../lib/auth";
import { useSubmit } from "../lib/hooks";
import { useNameAndSlug } from "../lib/slug";
import { Icon } from "./icons";
import { FormDialog, TextField } from "./ui";

export function OrgSwitcher({ me, current }: { me: Me; current: Org }) {
  const [open, setOpen] = useState(false);
  const [creating, setCreating] = useState(false);
  const ref = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const onDown = (event: MouseEvent) => {
      if (!ref.current?.contains(event.target as Node)) setOpen(false);
    };
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && setOpen(false);
    document.addEventListener("mousedown", onDown);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("mousedown", onDown);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);

  return (
    <div className="switcher" ref={ref}>
      <button
        type="button"
        className="switcher-button"
        aria-haspopup="true"
        aria-expanded={open}
        aria-label={`Organisation: ${current.name}. Switch organisation`}
        data-testid="org-switcher"
        onClick={() => setOpen((v) => !v)}
      >
        <span className="org-mark" aria-hidden="true">
          {current.name.slice(0, 1).toUpperCase()}
        </span>
        <span className="org-name">
          {current.name}
          <span className="org-role">{current.role ?? "API key"}</span>
        </span>
        <Icon name="chevrons" size={14} />
      </button>
      {open ? (
        <ul className="switcher-menu" aria-label="Organisations">
          {me.organizations.map((org) => (
            <li key={org.id}>
              <Link
                to={`/orgs/${org.slug}/${homeSection(org.role)}`}
                className={org.slug === current.slug ? "current" : undefined}
                aria-current={org.slug === current.slug ? "true" : undefined}
                onClick={() => setOpen(false)}
              >
                <span className="org-mark" aria-hidden="true" style={{ width: 20, height: 20, fontSize: 11 }}>
                  {org.name.slice(0, 1).toUpperCase()}
                </span>
                <span className="grow">{org.name}</span>
                <span className="muted small">{org.role}</span>
              </Link>
            </li>
          ))}
          <li>
            <hr />
          </li>
          <li>
            <button
              type="button"
              onClick={() => {
                setOpen(false);
                setCreating(true);
              }}
            >
              <Icon name="plus" size={14} /> Create organisation
            </button>
          </li>
        </ul>
      ) : null}
      {creating ? <CreateOrgDialog onClose={() => setCreating(false)} /> : null}
    </div>
  );
}

function CreateOrgDialog({ onClose }: { onClose: () => void }) {
  const { refresh } = useAuth();
  const navigate = useNavigate();
  const { name, slug, setName, setSlug } = useNameAndSlug();
  const submit = useSubmit(["name", "slug"]);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const org = await call(() => api.POST("/api/orgs", { body: { name, slug } }));
      await refresh();
      onClose();
      navigate(`/orgs/${org.slug}/workspaces`);
    });
  };

  return (
    <FormDialog
      title="Create organisation"
      description="You will be its owner."
      onClose={onClose}
      onSubmit={onSubmit}
      submit={submit}
      submitLabel="Create"
    >
      <TextField
        label="Name"
        name="name"
        required
        value={name}
        onChange={(e) => setName(e.target.value)}
        error={submit.fields.name}
      />
      <TextField
        label="URL slug"
        name="slug"
        required
        value={slug}
        onChange={(e) => setSlug(e.target.value)}
        error={submit.fields.slug}
        hint="Lowercase letters, digits and hyphens."
      />
    </FormDialog>
  );
}
