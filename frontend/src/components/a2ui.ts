/**
 * A2UI v0.9 (basic catalog) helpers for the card renderer (A2uiCard.tsx): data binding over
 * the surface's data model (JSON Pointer paths, relative ones inside list templates), the
 * basic catalog's check functions, and the input components' values. The server checks an
 * answer the same way (platform/flows/cards.py); these only let the card show it first.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One component of a surface, in the spec's flat JSON shape: `{id, component, ...props}`. */
export interface A2uiComponent {
  id: string;
  component: string;
  [prop: string]: unknown;
}

export interface A2uiSurface {
  version?: string;
  catalogId?: string;
  surfaceId?: string;
  root: string;
  components: A2uiComponent[];
}

/** The input components: their values are the answer's `values`, by component id. */
export const INPUT_COMPONENTS = new Set(["TextField", "CheckBox", "ChoicePicker", "DateTimeInput", "Slider"]);

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The surface a card carries, or null when it is not one (nothing to draw then). */
export function readSurface(raw: unknown): A2uiSurface | null {
  if (!isRecord(raw) || !Array.isArray(raw.components)) return null;
  const components = raw.components.filter(
    (c): c is A2uiComponent => isRecord(c) && typeof c.id === "string" && typeof c.component === "string",
  );
  return {
    version: typeof raw.version === "string" ? raw.version : undefined,
    catalogId: typeof raw.catalogId === "string" ? raw.catalogId : undefined,
    surfaceId: typeof raw.surfaceId === "string" ? raw.surfaceId : undefined,
    root: typeof raw.root === "string" && raw.root ? raw.root : "root",
    components,
  };
}

/** A `{path}` binding's path, or null for a literal (or a function call). */
export function bindingPath(raw: unknown): string | null {
  return isRecord(raw) && typeof raw.path === "string" ? raw.path : null;
}

/** An absolute JSON Pointer for `path`: relative paths resolve against `base` (a list item). */
export function absolutePath(path: string, base = ""): string {
  if (path.startsWith("/")) return path;
  const trimmed = base.replace(/\/+$/, "");
  return path ? `${trimmed}/${path}` : trimmed || "/";
}

function pointer(path: string): string[] {
  return path
    .split("/")
    .filter((part) => part !== "")
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** The value at `path` in `model` (undefined when it is not there). */
export function readPath(model: unknown, path: string): unknown {
  let node: unknown = model;
  for (const part of pointer(path)) {
    if (Array.isArray(node) && /^\d+$/.test(part)) node = node[Number(part)];
    else if (isRecord(node) && Object.hasOwn(node, part)) node = node[part];
    else return undefined;
  }
  return node;
}

/** A copy of `model` with `value` at `path` (objects created on the way, as the server does). */
export function writePath<T>(model: T, path: string, value: unknown): T {
  const parts = pointer(path);
  if (parts.length === 0) return model;
  const write = (node: unknown, index: number): unknown => {
    const part = parts[index] as string;
    const last = index === parts.length - 1;
    if (Array.isArray(node)) {
      if (!/^\d+$/.test(part) || Number(part) >= node.length) return node;
      const copy = [...node];
      copy[Number(part)] = last ? value : write(copy[Number(part)], index + 1);
      return copy;
    }
    const record = isRecord(node) ? node : {};
    return { ...record, [part]: last ? value : write(record[part], index + 1) };
  };
  return write(model, 0) as T;
}

/** A DynamicValue: a literal as it is, a `{path}` binding read from the data model. */
export function resolve(raw: unknown, model: unknown, base = ""): unknown {
  const path = bindingPath(raw);
  if (path !== null) return readPath(model, absolutePath(path, base));
  if (isRecord(raw) && typeof raw.call === "string") return callFunction(raw, model, base);
  return raw;
}

/** Text for a DynamicString (numbers and booleans as text; objects are not shown). */
export function resolveText(raw: unknown, model: unknown, base = ""): string {
  const value = resolve(raw, model, base);
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return "";
}

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

function toNumber(value: unknown): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "string" && value.trim() !== "") {
    const number = Number(value);
    return Number.isFinite(number) ? number : null;
  }
  return null;
}

function safeRegExp(pattern: unknown): RegExp | null {
  if (typeof pattern !== "string") return null;
  try {
    return new RegExp(pattern);
  } catch {
    return null; // a pattern JavaScript cannot read is left to the server
  }
}

/**
 * The basic catalog functions a check can call (`required`, `length`, `numeric`, `regex`,
 * `email`, and `and`/`or`/`not` over them), evaluated over resolved arguments. Others (the
 * catalog's formatting functions) are not evaluated: undefined.
 */
export function callFunction(raw: Record<string, unknown>, model: unknown, base = ""): unknown {
  const rawArgs = isRecord(raw.args) ? raw.args : {};
  const args: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rawArgs)) {
    args[key] = Array.isArray(value) ? value.map((item) => resolve(item, model, base)) : resolve(value, model, base);
  }
  return evaluate(String(raw.call), args);
}

function evaluate(call: string, args: Record<string, unknown>): unknown {
  const value = args.value;
  switch (call) {
    case "required":
      return !(value === null || value === undefined || value === "" || value === false || (Array.isArray(value) && value.length === 0));
    case "length": {
      if (value === null || value === undefined || value === "") return true;
      if (typeof value !== "string" && !Array.isArray(value)) return true;
      const min = toNumber(args.min) ?? 0;
      const max = toNumber(args.max) ?? Infinity;
      return value.length >= min && value.length <= max;
    }
    case "numeric": {
      if (value === null || value === undefined || value === "") return true;
      const number = typeof value === "boolean" ? null : toNumber(value);
      if (number === null) return false;
      return number >= (toNumber(args.min) ?? -Infinity) && number <= (toNumber(args.max) ?? Infinity);
    }
    case "regex": {
      if (value === null || value === undefined || value === "" || typeof value !== "string") return true;
      const pattern = safeRegExp(args.pattern);
      return pattern === null || pattern.test(value);
    }
    case "email":
      if (value === null || value === undefined || value === "") return true;
      return typeof value === "string" && EMAIL.test(value);
    case "and":
      return Array.isArray(args.values) ? args.values.every((v) => v !== false) : undefined;
    case "or":
      return Array.isArray(args.values) ? args.values.some((v) => v === true) : undefined;
    case "not":
      return typeof value === "boolean" ? !value : undefined;
    default:
      return undefined;
  }
}

/**
 * The message of the first of a component's checks that fails (null: none does, or none can be
 * evaluated here). A check on the component's own value (`args.value` equal to its `value`
 * binding) sees `ownValue`, the value being edited, even when that value is not bound by path.
 */
export function failedCheck(component: A2uiComponent, ownValue: unknown, model: unknown, base = ""): string | null {
  const checks = Array.isArray(component.checks) ? component.checks : [];
  for (const check of checks) {
    if (!isRecord(check)) continue;
    const condition = check.condition;
    let passed: unknown;
    if (isRecord(condition) && typeof condition.call === "string") {
      const args = isRecord(condition.args) ? condition.args : {};
      const own = "value" in args && JSON.stringify(args.value) === JSON.stringify(component.value);
      // `ownValue` is a plain value (a string, boolean, number or list): resolving keeps it.
      passed = own
        ? callFunction({ ...condition, args: { ...args, value: ownValue } }, model, base)
        : callFunction(condition, model, base);
    } else {
      passed = resolve(condition, model, base);
    }
    if (passed === false) return typeof check.message === "string" && check.message ? check.message : "invalid";
  }
  return null;
}

/** An http(s) URL to load media from, or null: nothing else (no javascript:, data:, relative). */
export function safeMediaUrl(raw: unknown): string | null {
  if (typeof raw !== "string" || !raw) return null;
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** What an input shows when the card gives it no value. */
export function emptyValue(component: A2uiComponent): unknown {
  switch (component.component) {
    case "CheckBox":
      return false;
    case "ChoicePicker":
      return [];
    case "Slider":
      return typeof component.min === "number" ? component.min : 0;
    default:
      return "";
  }
}

/** The value a person's edit of `component` produces, in the type the server expects. */
export function normalValue(component: A2uiComponent, value: unknown): unknown {
  switch (component.component) {
    case "CheckBox":
      return value === true;
    case "ChoicePicker":
      return Array.isArray(value) ? value.map(String) : typeof value === "string" && value ? [value] : [];
    case "Slider":
      return toNumber(value) ?? emptyValue(component);
    default:
      return value === null || value === undefined ? "" : String(value);
  }
}

/** A ChildList: static ids, or a template repeated over a data list (each item its base path). */
export function childList(raw: unknown, model: unknown, base = ""): { id: string; base: string; key: string }[] {
  if (Array.isArray(raw)) {
    return raw.filter((id): id is string => typeof id === "string").map((id, i) => ({ id, base, key: `${id}:${i}` }));
  }
  if (isRecord(raw) && typeof raw.componentId === "string" && typeof raw.path === "string") {
    const listPath = absolutePath(raw.path, base);
    const list = readPath(model, listPath);
    const keys = Array.isArray(list) ? list.map((_, i) => String(i)) : isRecord(list) ? Object.keys(list) : [];
    const id = raw.componentId;
    return keys.map((key) => {
      const escaped = key.replace(/~/g, "~0").replace(/\//g, "~1");
      const itemBase = `${listPath.replace(/\/+$/, "")}/${escaped}`;
      return { id, base: itemBase, key: `${id}@${itemBase}` };
    });
  }
  return [];
}
