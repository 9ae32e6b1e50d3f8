/**
 * What the node config forms need beyond the JSON Schema itself: which fields name a vault
 * secret (a select of the vault's names, never a typed value), and the form's ui schema.
 */
import type { JsonSchema } from "./catalogue";

export const SECRET_WIDGET = "secretRef";

/**
 * The engine marks a secret reference by its property name (`api_key_secret`, a secret
 * header's `secret`) and its pattern (SECRET_REF_PATTERN, `^(workspace:)?name`).
 */
export function isSecretField(name: string, schema: unknown): boolean {
  if (typeof schema !== "object" || schema === null) return false;
  const property = schema as JsonSchema;
  if (property.type !== "string") return false;
  const pattern = typeof property.pattern === "string" ? property.pattern : "";
  return name === "secret" || name.endsWith("_secret") || pattern.startsWith("^(workspace:)?");
}

type UiSchema = Record<string, unknown>;

/** The ui schema of a node's config form: secret references use the vault select. */
export function configUiSchema(schema: JsonSchema): UiSchema {
  const ui: UiSchema = { "ui:submitButtonOptions": { norender: true } };
  return { ...walk(schema), ...ui };
}

function walk(schema: unknown): UiSchema {
  if (typeof schema !== "object" || schema === null) return {};
  const node = schema as JsonSchema;
  const ui: UiSchema = {};
  const properties = node.properties as Record<string, unknown> | undefined;
  for (const [name, property] of Object.entries(properties ?? {})) {
    if (isSecretField(name, property)) {
      ui[name] = { "ui:widget": SECRET_WIDGET };
    } else {
      const inner = walk(property);
      if (Object.keys(inner).length > 0) ui[name] = inner;
    }
  }
  const items = walk(node.items);
  if (Object.keys(items).length > 0) ui.items = items;
  const extra = walk(node.additionalProperties);
  if (Object.keys(extra).length > 0) ui.additionalProperties = extra;
  return ui;
}

/** The choices of a secret select: the user's own secrets by name, the workspace's as `workspace:name`. */
export function secretChoices(own: readonly string[], shared: readonly string[]): { value: string; label: string }[] {
  return [
    ...own.map((name) => ({ value: name, label: `${name} (yours)` })),
    ...shared.map((name) => ({ value: `workspace:${name}`, label: `workspace:${name} (shared)` })),
  ];
}
