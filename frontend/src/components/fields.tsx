/** The account inputs the log-in, sign-up, invitation and password pages share, with their autofill hints. */
import type { ComponentProps } from "react";
import { TextField } from "./ui";

type InputProps = Omit<ComponentProps<typeof TextField>, "label" | "type"> & { label?: string };

export const PASSWORD_RULES = "At least 10 characters; not a common password.";

export function EmailField({ label = "Email", ...input }: InputProps) {
  return <TextField label={label} name="email" type="email" autoComplete="email" required {...input} />;
}

export function NameField({ label = "Your name", ...input }: InputProps) {
  return <TextField label={label} name="name" autoComplete="name" required {...input} />;
}

/** An existing password by default; pass `autoComplete="new-password"` for a repeated new one. */
export function PasswordField({ label = "Password", ...input }: InputProps) {
  return (
    <TextField label={label} name="password" type="password" autoComplete="current-password" required {...input} />
  );
}

/** A password being chosen, with the server's rules as its hint. */
export function NewPasswordField(props: InputProps) {
  return <PasswordField autoComplete="new-password" hint={PASSWORD_RULES} {...props} />;
}
