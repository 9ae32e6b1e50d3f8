/**
 * An interactive card: an A2UI v0.9 surface (basic catalog) drawn from the spec's flat JSON
 * components and bound to its data model, as the card node builds it (engine/nodes/_card.py).
 *
 * Our own small renderer rather than `@a2ui/react`: that renderer writes an input's value only
 * through a `{path}` binding (inputs with a literal value cannot be edited), gives no read-only
 * mode, no way to put the server's per-input errors or test ids on its inputs, loads media
 * from any URL, and brings lit, date-fns, markdown-it and zod with it.
 *
 * Inputs are two-way bound: an input bound by `{path}` writes to the (local copy of the) data
 * model, any other keeps its own value. A Button with an `event` action calls `onAction` with
 * the event's name and the values of the inputs the person changed, by component id (an input
 * left out keeps the value the card showed, as the server reads it). Client-side checks
 * (`checks`, `validationRegexp`) are shown and stop an action; the server checks again.
 * Text is shown as plain text (no Markdown, no HTML); media load only from http(s) URLs.
 */
import { useId, useMemo, useState, type ReactNode } from "react";
import {
  INPUT_COMPONENTS,
  absolutePath,
  bindingPath,
  childList,
  emptyValue,
  failedCheck,
  isRecord,
  normalValue,
  readPath,
  readSurface,
  resolve,
  resolveText,
  safeMediaUrl,
  writePath,
  type A2uiComponent,
} from "./a2ui";

/** What a person did on the card: the Button's event name, and the changed inputs' values. */
export interface CardAction {
  name: string;
  values: Record<string, unknown>;
}

/** The card of a human request (CardRequestOut): surface, data model, and the answer, if any. */
export interface CardContent {
  surface: Record<string, unknown>;
  data: Record<string, unknown>;
  action: Record<string, unknown> | null;
  values: Record<string, unknown> | null;
}

const NO_ERRORS: Record<string, string> = {};
const MAX_DEPTH = 64;

const JUSTIFY: Record<string, string> = {
  start: "flex-start",
  center: "center",
  end: "flex-end",
  spaceBetween: "space-between",
  spaceAround: "space-around",
  spaceEvenly: "space-evenly",
  stretch: "stretch",
};
const ALIGN: Record<string, string> = { start: "flex-start", center: "center", end: "flex-end", stretch: "stretch" };

const ICONS: Record<string, string> = {
  add: "+",
  arrowBack: "←",
  arrowForward: "→",
  attachFile: "📎",
  calendarToday: "📅",
  call: "📞",
  check: "✓",
  close: "✕",
  delete: "🗑",
  download: "⤓",
  edit: "✎",
  error: "⚠",
  event: "📅",
  favorite: "♥",
  favoriteOff: "♡",
  help: "?",
  home: "⌂",
  info: "ℹ",
  locationOn: "📍",
  lock: "🔒",
  lockOpen: "🔓",
  mail: "✉",
  menu: "☰",
  moreHoriz: "…",
  moreVert: "⋮",
  person: "👤",
  accountCircle: "👤",
  phone: "📞",
  refresh: "↻",
  search: "🔍",
  send: "➤",
  settings: "⚙",
  share: "⤴",
  star: "★",
  starOff: "☆",
  upload: "⤒",
  warning: "⚠",
};

interface RenderContext {
  base: string;
  ancestors: readonly string[];
  inButton: boolean;
  /** Set inside a Modal's trigger: a Button there opens the modal instead of acting. */
  onTrigger?: () => void;
}

/** A DOM-safe id fragment for a component shown at a base path. */
function domKey(id: string, base: string): string {
  return `${id}${base}`.replace(/[^A-Za-z0-9_-]/g, "_");
}

function displayValue(value: unknown): string {
  if (Array.isArray(value)) return value.map(String).join(", ") || "—";
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

/** The data model with the answered values written where their inputs bind. */
function answeredModel(data: Record<string, unknown>, byId: Map<string, A2uiComponent>, values: Record<string, unknown> | null) {
  let model: Record<string, unknown> = data;
  const local: Record<string, unknown> = {};
  for (const [id, value] of Object.entries(values ?? {})) {
    const component = byId.get(id);
    const path = component ? bindingPath(component.value) : null;
    if (path !== null && path.startsWith("/")) model = writePath(model, path, value);
    else local[id] = value;
  }
  return { model, local };
}

export function A2uiCard({
  card,
  readOnly = false,
  busy = false,
  errors = NO_ERRORS,
  onAction,
}: {
  card: CardContent;
  /** Answered (or not answerable): inputs and buttons are shown, disabled. */
  readOnly?: boolean;
  /** An answer is being sent: the buttons wait. */
  busy?: boolean;
  /** The server's messages by input component id (a 422's `values.<id>`). */
  errors?: Record<string, string>;
  onAction?: (action: CardAction) => void;
}) {
  const surface = useMemo(() => readSurface(card.surface), [card.surface]);
  const byId = useMemo(() => new Map((surface?.components ?? []).map((c) => [c.id, c])), [surface]);
  const data = isRecord(card.data) ? card.data : {};
  const [state, setState] = useState(() => answeredModel(data, byId, card.values));
  // The inputs the person changed: component id -> the base path it was shown at.
  const [touched, setTouched] = useState<Record<string, string>>({});
  const [attempted, setAttempted] = useState(false);
  const [tabs, setTabs] = useState<Record<string, number>>({});
  const [openModal, setOpenModal] = useState<string | null>(null);
  const uid = useId();

  if (surface === null || !byId.has(surface.root)) {
    return (
      <div className="alert alert-warn" role="status" data-testid="a2ui-card-invalid">
        <div>This card has no surface the console can draw.</div>
      </div>
    );
  }

  const { model, local } = state;
  const taken = isRecord(card.action) ? card.action : null;
  const takenName = taken && typeof taken.name === "string" ? taken.name : null;
  const takenSource = taken && typeof taken.sourceComponentId === "string" ? taken.sourceComponentId : null;

  const valueOf = (component: A2uiComponent, base: string): unknown => {
    const path = bindingPath(component.value);
    let value: unknown;
    if (path !== null) value = readPath(model, absolutePath(path, base));
    else if (Object.hasOwn(local, component.id)) value = local[component.id];
    else value = resolve(component.value, model, base);
    return value === undefined || value === null ? emptyValue(component) : value;
  };

  const setValue = (component: A2uiComponent, base: string, raw: unknown) => {
    if (readOnly) return;
    const value = normalValue(component, raw);
    const path = bindingPath(component.value);
    setState((current) =>
      path !== null
        ? { ...current, model: writePath(current.model, absolutePath(path, base), value) }
        : { ...current, local: { ...current.local, [component.id]: value } },
    );
    setTouched((current) => ({ ...current, [component.id]: base }));
  };

  /** What is wrong with an input's value on this side: its pattern, then its checks. */
  const clientProblem = (component: A2uiComponent, base: string): string | null => {
    const value = valueOf(component, base);
    if (component.component === "TextField" && typeof component.validationRegexp === "string" && value !== "") {
      try {
        if (!new RegExp(component.validationRegexp).test(String(value))) {
          return `does not match the pattern ${component.validationRegexp}`;
        }
      } catch {
        // a pattern JavaScript cannot read is left to the server
      }
    }
    return failedCheck(component, value, model, base);
  };

  const act = (button: A2uiComponent, name: string) => {
    if (readOnly || busy || !onAction) return;
    // Inputs shown at the top level (not in a list template) are checked before sending.
    const blocking = surface.components.filter((c) => {
      if (!INPUT_COMPONENTS.has(c.component)) return false;
      const path = bindingPath(c.value);
      return (path === null || path.startsWith("/")) && clientProblem(c, touched[c.id] ?? "") !== null;
    });
    if (blocking.length > 0 || failedCheck(button, undefined, model) !== null) {
      setAttempted(true);
      return;
    }
    const values: Record<string, unknown> = {};
    for (const [id, base] of Object.entries(touched)) {
      const component = byId.get(id);
      if (component) values[id] = valueOf(component, base);
    }
    onAction({ name, values });
  };

  const fieldMessage = (component: A2uiComponent, base: string, fieldId: string): ReactNode => {
    const server = errors[component.id];
    const client = !readOnly && (attempted || component.id in touched) ? clientProblem(component, base) : null;
    const message = server ?? client;
    if (!message) return null;
    return (
      <span className="error" id={`${fieldId}-error`} role={server ? "alert" : undefined} data-testid={`a2ui-error-${component.id}`}>
        {message}
      </span>
    );
  };

  const invalidProps = (component: A2uiComponent, base: string, fieldId: string) => {
    const invalid =
      component.id in errors || (!readOnly && (attempted || component.id in touched) && clientProblem(component, base) !== null);
    return invalid ? { "aria-invalid": true as const, "aria-describedby": `${fieldId}-error` } : {};
  };

  const renderChildren = (raw: unknown, ctx: RenderContext): ReactNode[] =>
    childList(raw, model, ctx.base).map((child) => renderNode(child.id, { ...ctx, base: child.base }, child.key));

  function renderNode(id: string, ctx: RenderContext, key?: string): ReactNode {
    const component = byId.get(id);
    if (!component || ctx.ancestors.includes(id) || ctx.ancestors.length > MAX_DEPTH) return null;
    const inner: RenderContext = { ...ctx, ancestors: [...ctx.ancestors, id] };
    const { base } = ctx;
    const fieldId = `${uid}-${domKey(id, base)}`;
    const text = (raw: unknown) => resolveText(raw, model, base);
    const testId = `a2ui-${id}`;
    const disabled = readOnly;

    switch (component.component) {
      case "Text": {
        const variant = typeof component.variant === "string" ? component.variant : "body";
        const level = /^h[1-5]$/.test(variant) ? Number(variant.slice(1)) : null;
        const heading = level !== null && !ctx.inButton ? { role: "heading", "aria-level": level } : {};
        return (
          <span key={key} className={`a2ui-text a2ui-text-${variant}`} {...heading} data-a2ui={id}>
            {text(component.text)}
          </span>
        );
      }
      case "Image": {
        const url = safeMediaUrl(resolve(component.url, model, base));
        const alt = text(component.description);
        if (!url) return <span key={key} className="muted small">[image not shown{alt ? `: ${alt}` : ""}]</span>;
        const variant = typeof component.variant === "string" ? component.variant : "mediumFeature";
        return <img key={key} src={url} alt={alt} className={`a2ui-image a2ui-image-${variant}`} data-a2ui={id} />;
      }
      case "Icon": {
        const name = component.name;
        if (isRecord(name) && typeof name.svgPath === "string") {
          return (
            <svg key={key} className="a2ui-icon" viewBox="0 0 24 24" aria-hidden="true" data-a2ui={id}>
              <path d={name.svgPath} fill="currentColor" />
            </svg>
          );
        }
        const label = text(name);
        return (
          <span key={key} className="a2ui-icon" role="img" aria-label={label} title={label} data-a2ui={id}>
            {ICONS[label] ?? "•"}
          </span>
        );
      }
      case "Video":
      case "AudioPlayer": {
        const url = safeMediaUrl(resolve(component.url, model, base));
        const description = text(component.description);
        if (!url) return <span key={key} className="muted small">[media not shown{description ? `: ${description}` : ""}]</span>;
        return component.component === "Video" ? (
          <video key={key} className="a2ui-media" src={url} controls preload="metadata" data-a2ui={id} />
        ) : (
          <div key={key} className="a2ui-column" data-a2ui={id}>
            {description ? <span className="muted small">{description}</span> : null}
            <audio src={url} controls preload="metadata" aria-label={description || undefined} />
          </div>
        );
      }
      case "Row":
      case "Column":
      case "List": {
        const horizontal =
          component.component === "Row" || (component.component === "List" && component.direction === "horizontal");
        const justify = typeof component.justify === "string" ? JUSTIFY[component.justify] : undefined;
        const align = typeof component.align === "string" ? ALIGN[component.align] : undefined;
        return (
          <div
            key={key}
            className={horizontal ? "a2ui-row" : "a2ui-column"}
            style={{ justifyContent: justify, alignItems: align }}
            data-a2ui={id}
          >
            {renderChildren(component.children, inner)}
          </div>
        );
      }
      case "Card":
        return (
          <div key={key} className="a2ui-box" data-a2ui={id}>
            {typeof component.child === "string" ? renderNode(component.child, inner) : null}
          </div>
        );
      case "Divider":
        return component.axis === "vertical" ? (
          <span key={key} className="a2ui-divider-vertical" role="separator" aria-orientation="vertical" />
        ) : (
          <hr key={key} className="a2ui-divider" />
        );
      case "Tabs": {
        const list = (Array.isArray(component.tabs) ? component.tabs : []).filter(isRecord);
        const tabKey = `${id}${base}`;
        const selected = Math.min(tabs[tabKey] ?? 0, Math.max(list.length - 1, 0));
        const active = list[selected];
        return (
          <div key={key} className="a2ui-tabs" data-a2ui={id}>
            <div role="tablist" className="a2ui-tablist">
              {list.map((tab, i) => (
                <button
                  key={i}
                  type="button"
                  role="tab"
                  id={`${fieldId}-tab-${i}`}
                  aria-selected={i === selected}
                  aria-controls={`${fieldId}-panel`}
                  className={`btn btn-sm ${i === selected ? "btn-primary" : "btn-ghost"}`}
                  onClick={() => setTabs((current) => ({ ...current, [tabKey]: i }))}
                >
                  {text(tab.title)}
                </button>
              ))}
            </div>
            <div role="tabpanel" id={`${fieldId}-panel`} aria-labelledby={`${fieldId}-tab-${selected}`}>
              {active && typeof active.child === "string" ? renderNode(active.child, inner) : null}
            </div>
          </div>
        );
      }
      case "Modal": {
        const modalKey = `${id}${base}`;
        const trigger = typeof component.trigger === "string" ? byId.get(component.trigger) : undefined;
        const open = () => setOpenModal(modalKey);
        return (
          <span key={key} className="a2ui-modal" data-a2ui={id}>
            {trigger?.component === "Button" ? (
              renderNode(trigger.id, { ...inner, onTrigger: open })
            ) : (
              <button type="button" className="btn btn-ghost" onClick={open} data-testid={testId}>
                {trigger ? renderNode(trigger.id, { ...inner, inButton: true }) : "Open"}
              </button>
            )}
            {openModal === modalKey ? (
              <div className="overlay" onClick={() => setOpenModal(null)}>
                <div
                  className="dialog a2ui-dialog"
                  role="dialog"
                  aria-modal="true"
                  aria-label={trigger ? undefined : "Details"}
                  onClick={(event) => event.stopPropagation()}
                >
                  <div className="dialog-body stack">
                    {typeof component.content === "string" ? renderNode(component.content, { ...inner, onTrigger: undefined }) : null}
                  </div>
                  <div className="dialog-footer">
                    <button type="button" className="btn" onClick={() => setOpenModal(null)}>
                      Close
                    </button>
                  </div>
                </div>
              </div>
            ) : null}
          </span>
        );
      }
      case "Button": {
        const action = isRecord(component.action) ? component.action : {};
        const event = isRecord(action.event) ? action.event : null;
        const name = event && typeof event.name === "string" ? event.name : null;
        const variant = component.variant === "primary" ? "btn-primary" : component.variant === "borderless" ? "btn-ghost" : "";
        const chosen = takenSource !== null ? takenSource === id : takenName !== null && takenName === name;
        const trigger = ctx.onTrigger;
        const blocked = failedCheck(component, undefined, model, base);
        const label = typeof component.child === "string" ? renderNode(component.child, { ...inner, inButton: true, onTrigger: undefined }) : null;
        if (trigger) {
          return (
            <button key={key} type="button" className={`btn ${variant}`} onClick={trigger} data-testid={testId}>
              {label}
            </button>
          );
        }
        return (
          <button
            key={key}
            type="button"
            className={`btn ${variant}${chosen ? " a2ui-chosen" : ""}`}
            disabled={disabled || busy || name === null || !onAction || blocked !== null}
            title={name === null ? "This button runs a client function the console does not run." : (blocked ?? undefined)}
            aria-pressed={readOnly ? chosen : undefined}
            data-testid={testId}
            data-action={name ?? undefined}
            onClick={() => name !== null && act(component, name)}
          >
            {label}
            {chosen ? <span aria-hidden="true"> ✓</span> : null}
          </button>
        );
      }
      case "TextField": {
        const value = String(valueOf(component, base));
        const variant = component.variant;
        const common = {
          id: fieldId,
          className: "input",
          value,
          disabled,
          "data-testid": testId,
          ...invalidProps(component, base, fieldId),
        };
        return (
          <div key={key} className="field" data-a2ui={id}>
            <label htmlFor={fieldId}>{text(component.label)}</label>
            {variant === "longText" ? (
              <textarea {...common} rows={3} onChange={(e) => setValue(component, base, e.target.value)} />
            ) : (
              <input
                {...common}
                type={variant === "obscured" ? "password" : "text"}
                inputMode={variant === "number" ? "decimal" : undefined}
                onChange={(e) => setValue(component, base, e.target.value)}
              />
            )}
            {fieldMessage(component, base, fieldId)}
          </div>
        );
      }
      case "CheckBox": {
        const checked = valueOf(component, base) === true;
        return (
          <div key={key} className="field" data-a2ui={id}>
            <label className="checkbox" htmlFor={fieldId}>
              <input
                id={fieldId}
                type="checkbox"
                checked={checked}
                disabled={disabled}
                data-testid={testId}
                {...invalidProps(component, base, fieldId)}
                onChange={(e) => setValue(component, base, e.target.checked)}
              />
              {text(component.label)}
            </label>
            {fieldMessage(component, base, fieldId)}
          </div>
        );
      }
      case "ChoicePicker":
        return renderChoicePicker(component, base, fieldId, key);
      case "Slider": {
        const value = Number(valueOf(component, base));
        const min = typeof component.min === "number" ? component.min : 0;
        const max = typeof component.max === "number" ? component.max : 100;
        return (
          <div key={key} className="field" data-a2ui={id}>
            <label htmlFor={fieldId}>
              {text(component.label)} <span className="muted">{value}</span>
            </label>
            <input
              id={fieldId}
              type="range"
              min={min}
              max={max}
              value={value}
              disabled={disabled}
              data-testid={testId}
              {...invalidProps(component, base, fieldId)}
              onChange={(e) => setValue(component, base, Number(e.target.value))}
            />
            {fieldMessage(component, base, fieldId)}
          </div>
        );
      }
      case "DateTimeInput": {
        const withDate = component.enableDate === true;
        const withTime = component.enableTime === true;
        const type = withDate && !withTime ? "date" : withTime && !withDate ? "time" : "datetime-local";
        const bound = (raw: unknown) => {
          const value = resolve(raw, model, base);
          return typeof value === "string" && value ? value : undefined;
        };
        return (
          <div key={key} className="field" data-a2ui={id}>
            <label htmlFor={fieldId}>{text(component.label) || "Date"}</label>
            <input
              id={fieldId}
              className="input"
              type={type}
              value={String(valueOf(component, base))}
              min={bound(component.min)}
              max={bound(component.max)}
              disabled={disabled}
              data-testid={testId}
              {...invalidProps(component, base, fieldId)}
              onChange={(e) => setValue(component, base, e.target.value)}
            />
            {fieldMessage(component, base, fieldId)}
          </div>
        );
      }
      default:
        return (
          <span key={key} className="muted small">
            [{component.component} is not in the basic catalog]
          </span>
        );
    }
  }

  function renderChoicePicker(component: A2uiComponent, base: string, fieldId: string, key?: string): ReactNode {
    const current = valueOf(component, base);
    const selected = Array.isArray(current) ? current.map(String) : [];
    const single = component.variant !== "multipleSelection";
    const options = (Array.isArray(component.options) ? component.options : [])
      .filter(isRecord)
      .map((o) => ({ value: String(o.value ?? ""), label: resolveText(o.label, model, base) || String(o.value ?? "") }));
    const toggle = (value: string) =>
      setValue(
        component,
        base,
        single ? [value] : selected.includes(value) ? selected.filter((v) => v !== value) : [...selected, value],
      );
    const chips = component.displayStyle === "chips";
    return (
      <fieldset
        key={key}
        className="field a2ui-choices"
        data-testid={`a2ui-${component.id}`}
        data-a2ui={component.id}
        disabled={readOnly}
        {...invalidProps(component, base, fieldId)}
      >
        <legend className="label">{resolveText(component.label, model, base)}</legend>
        <div className={chips ? "row" : "a2ui-column"}>
          {options.map((option, i) =>
            chips ? (
              <button
                key={option.value}
                type="button"
                className={`btn btn-sm ${selected.includes(option.value) ? "btn-primary" : ""}`}
                aria-pressed={selected.includes(option.value)}
                data-testid={`a2ui-${component.id}-${option.value}`}
                onClick={() => toggle(option.value)}
              >
                {option.label}
              </button>
            ) : (
              <label key={option.value} className="checkbox" htmlFor={`${fieldId}-${i}`}>
                <input
                  id={`${fieldId}-${i}`}
                  type={single ? "radio" : "checkbox"}
                  name={fieldId}
                  value={option.value}
                  checked={selected.includes(option.value)}
                  data-testid={`a2ui-${component.id}-${option.value}`}
                  onChange={() => toggle(option.value)}
                />
                {option.label}
              </label>
            ),
          )}
        </div>
        {fieldMessage(component, base, fieldId)}
      </fieldset>
    );
  }

  const answeredValues = Object.entries(card.values ?? {});
  return (
    <div className="a2ui-card stack" data-testid="a2ui-card" data-surface={surface.surfaceId} aria-readonly={readOnly || undefined}>
      {renderNode(surface.root, { base: "", ancestors: [], inButton: false })}
      {readOnly && takenName !== null ? (
        <div className="a2ui-answer small" data-testid="a2ui-answer">
          <div>
            Answered with <strong data-testid="a2ui-action-taken">{takenName}</strong>
          </div>
          {answeredValues.length > 0 ? (
            <dl className="a2ui-values">
              {answeredValues.map(([id, value]) => (
                <div key={id}>
                  <dt className="mono">{id}</dt>
                  <dd data-testid={`a2ui-value-${id}`}>{displayValue(value)}</dd>
                </div>
              ))}
            </dl>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
