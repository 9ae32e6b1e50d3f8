import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api, call } from "../api/client";
import { EmailField, NameField, NewPasswordField } from "../components/fields";
import { Alert, Button, Field, TextField } from "../components/ui";
import { useAuth } from "../lib/auth";
import { useSubmit } from "../lib/hooks";
import { useNameAndSlug } from "../lib/slug";
import { AuthLayout } from "./AuthLayout";

export { slugify } from "../lib/slug";

export function SignupPage() {
  const { setMe } = useAuth();
  const navigate = useNavigate();
  const { name: orgName, slug, setName: setOrgName, setSlug } = useNameAndSlug();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const submit = useSubmit(["org_name", "org_slug", "name", "email", "password"]);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await submit.run(async () => {
      const me = await call(() =>
        api.POST("/api/auth/signup", {
          body: { org_name: orgName, org_slug: slug, name, email, password },
        }),
      );
      setMe(me);
      navigate(`/orgs/${me.organizations[0]?.slug ?? slug}/workspaces`, { replace: true });
    });
  };

  return (
    <AuthLayout
      title="Create your organisation"
      lead="Start building agent flows with your team."
      footer={
        <>
          Already have an account? <Link to="/login">Log in</Link>
        </>
      }
    >
      <form className="stack" onSubmit={onSubmit} noValidate aria-label="Sign up">
        {submit.error ? <Alert testId="form-error">{submit.error}</Alert> : null}
        <TextField
          label="Organisation name"
          name="org_name"
          required
          value={orgName}
          onChange={(e) => setOrgName(e.target.value)}
          error={submit.fields.org_name}
        />
        <Field label="URL" error={submit.fields.org_slug} hint="Lowercase letters, digits and hyphens.">
          {(a11y) => (
            <div className="input-prefix">
              <span aria-hidden="true">/orgs/</span>
              <input
                className="input"
                name="org_slug"
                required
                value={slug}
                onChange={(e) => setSlug(e.target.value)}
                {...a11y}
              />
            </div>
          )}
        </Field>
        <NameField value={name} onChange={(e) => setName(e.target.value)} error={submit.fields.name} />
        <EmailField
          label="Work email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={submit.fields.email}
        />
        <NewPasswordField
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={submit.fields.password}
        />
        <Button type="submit" variant="primary" block busy={submit.busy}>
          Create organisation
        </Button>
      </form>
    </AuthLayout>
  );
}
