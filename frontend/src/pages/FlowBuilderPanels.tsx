/** The builder's side panels: palette, node config form, problems, versions, runs and shortcuts. */
import Form from "@rjsf/core";
import type { IconButtonProps, RJSFSchema, RegistryWidgetsType, TemplatesType, UiSchema, WidgetProps } from "@rjsf/utils";
import validator from "@rjsf/validator-ajv8";
import { useId, useMemo, useState, type DragEvent, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call, type Page, type Schemas } from "../api/client";
import { PagedTable } from "../components/DataTable";
import { Alert, Button, EmptyState, Field, FormDialog, TextField, formatDate, relativeTime } from "../components/ui";
import { usePaged, useSubmit } from "../lib/hooks";
import { portColour, portsOf, portTypes, type Catalogue, type NodePorts, type NodeTypeSpec } from "../builder/catalogue";
import { SECRET_WIDGET, configUiSchema } from "../builder/configSchema";
import type { FlowDocument } from "../builder/document";
import { RUN_STATE_LABEL, flowInputs, parseRunInput, type NodeRunDetail, type NodeRunState } from "../builder/runview";
import type { Issue } from "./FlowBuilderNode";

export const NODE_MIME = "application/x-fireflow-node-type";

export function Palette({ catalogue, onAdd }: { catalogue: Catalogue; onAdd: (type: string) => void }) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const matching = [...catalogue.types.values()].filter(
      (t) => !q || [t.type, t.title, t.description, t.category].some((s) => s.toLowerCase().includes(q)),
    );
    const byCategory = new Map<string, NodeTypeSpec[]>();
    for (const spec of matching) byCategory.set(spec.category, [...(byCategory.get(spec.category) ?? []), spec]);
    return [...byCategory.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [catalogue, query]);
  const onDragStart = (event: DragEvent, type: string) => {
    event.dataTransfer.setData(NODE_MIME, type);
    event.dataTransfer.effectAllowed = "move";
  };
  return (
    <aside className="fb-palette card" aria-label="Node palette" data-testid="palette">
      <div className="fb-panel-head">
        <input
          className="input"
          type="search"
          placeholder="Search nodes"
          aria-label="Search nodes"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <p className="small muted">Drag a node onto the canvas, or press Enter on it to add it.</p>
      </div>
      <div className="fb-palette-list">
        {groups.length === 0 ? <p className="muted small">No node type matches “{query}”.</p> : null}
        {groups.map(([category, specs]) => (
          <section key={category} aria-label={category}>
            <h3 className="fb-palette-cat">{category}</h3>
            <ul>
              {specs.map((spec) => (
                <li key={spec.type}>
                  <button
                    type="button"
                    className="fb-palette-item"
                    draggable
                    onDragStart={(e) => onDragStart(e, spec.type)}
                    onClick={() => onAdd(spec.type)}
                    title={spec.description}
                    aria-label={`Add ${spec.title}`}
                    data-testid={`palette-${spec.type}`}
                  >
                    <strong>{spec.title}</strong>
                    <span className="small muted">{spec.description}</span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        ))}
      </div>
    </aside>
  );
}

export function PortLegend({ catalogue }: { catalogue: Catalogue }) {
  return (
    <ul className="fb-legend" aria-label="Port types">
      {portTypes(catalogue.compatibility).map((type) => (
        <li key={type}>
          <span className="fb-legend-dot" style={{ background: portColour(catalogue.compatibility, type) }} aria-hidden="true" />
          {type}
        </li>
      ))}
    </ul>
  );
}

export interface SecretChoice {
  value: string;
  label: string;
}

/** A secret reference: one of the vault's names, never a typed value. */
function SecretRefWidget({ id, value, required, disabled, readonly, onChange, registry }: WidgetProps) {
  const choices = ((registry.formContext as { secrets?: SecretChoice[] } | undefined)?.secrets ?? []) as SecretChoice[];
  const current = typeof value === "string" ? value : "";
  const known = current === "" || choices.some((c) => c.value === current);
  return (
    <select
      id={id}
      className="select"
      value={current}
      required={required}
      disabled={disabled || readonly}
      onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)}
    >
      <option value="">None (the workers' key)</option>
      {!known ? <option value={current}>{current} (not in your vaults)</option> : null}
      {choices.map((c) => (
        <option key={c.value} value={c.value}>
          {c.label}
        </option>
      ))}
    </select>
  );
}

const SKIP_DEFAULTS = { emptyObjectFields: "skipDefaults" } as const;

const WIDGETS: RegistryWidgetsType = { [SECRET_WIDGET]: SecretRefWidget };

/** The form library's buttons draw Bootstrap icons, which this console does not load: words instead. */
function textButton(label: string, variant: "sm" | "danger" = "sm") {
  return function TextButton({ onClick, disabled, id, className }: IconButtonProps) {
    return (
      <button
        type="button"
        id={id}
        className={`btn btn-sm${variant === "danger" ? " btn-danger-ghost" : ""} ${className ?? ""}`}
        onClick={onClick}
        disabled={disabled}
      >
        {label}
      </button>
    );
  };
}

const TEMPLATES: Partial<TemplatesType> = {
  ButtonTemplates: {
    AddButton: textButton("Add"),
    RemoveButton: textButton("Remove", "danger"),
    MoveUpButton: textButton("Up"),
    MoveDownButton: textButton("Down"),
    CopyButton: textButton("Copy"),
    ClearButton: textButton("Clear"),
    SubmitButton: () => null,
  },
};

export function ConfigForm({
  nodeId,
  spec,
  config,
  readOnly,
  secrets,
  onChange,
}: {
  nodeId: string;
  spec: NodeTypeSpec;
  config: Record<string, unknown>;
  readOnly: boolean;
  secrets: SecretChoice[];
  onChange: (config: Record<string, unknown>) => void;
}) {
  const uiSchema = useMemo(() => configUiSchema(spec.config_schema) as UiSchema, [spec]);
  const formContext = useMemo(() => ({ secrets }), [secrets]);
  return (
    <div className="fb-config" data-testid="config-form">
      <Form
        idPrefix={`cfg-${nodeId}`}
        schema={spec.config_schema as RJSFSchema}
        uiSchema={uiSchema}
        formData={config}
        validator={validator}
        widgets={WIDGETS}
        templates={TEMPLATES}
        formContext={formContext}
        disabled={readOnly}
        // Defaults stay the engine's business: opening a node must not change the flow.
        experimental_defaultFormStateBehavior={SKIP_DEFAULTS}
        noHtml5Validate
        showErrorList={false}
        onChange={(event) => onChange((event.formData ?? {}) as Record<string, unknown>)}
      />
    </div>
  );
}

/** The selected node: its type, ports and config (or, during a run, what went through it). */
export function NodeInspector({
  nodeId,
  spec,
  config,
  ports,
  issues,
  readOnly,
  secrets,
  onConfig,
  catalogue,
}: {
  nodeId: string;
  spec: NodeTypeSpec | undefined;
  config: Record<string, unknown>;
  ports: NodePorts | undefined;
  issues: Issue[];
  readOnly: boolean;
  secrets: SecretChoice[];
  onConfig: (config: Record<string, unknown>) => void;
  catalogue: Catalogue;
}) {
  if (!spec) return <Alert>Node {nodeId} has a type this server does not know. Delete it, or replace it.</Alert>;
  const resolved = portsOf(spec, ports);
  return (
    <section className="stack" aria-label={`Node ${nodeId}`} data-testid="node-inspector">
      <div>
        <h2 className="fb-h2">
          {spec.title} <span className="mono muted">{nodeId}</span>
        </h2>
        <p className="small muted">{spec.description}</p>
      </div>
      {issues.length > 0 ? (
        <ul className="fb-issue-list">
          {issues.map((issue, i) => (
            <li key={i} className={issue.severity === "error" ? "fb-issue-error" : "fb-issue-warning"}>
              {issue.message}
            </li>
          ))}
        </ul>
      ) : null}
      <div className="small">
        {resolved.inputs.length > 0 ? (
          <div>
            In:{" "}
            {resolved.inputs.map((p) => (
              <span key={p.name} className="fb-port-chip" style={{ borderColor: portColour(catalogue.compatibility, p.type) }}>
                {p.name}: {p.type}
              </span>
            ))}
          </div>
        ) : null}
        {resolved.outputs.length > 0 ? (
          <div>
            Out:{" "}
            {resolved.outputs.map((p) => (
              <span key={p.name} className="fb-port-chip" style={{ borderColor: portColour(catalogue.compatibility, p.type) }}>
                {p.name}: {p.type}
              </span>
            ))}
          </div>
        ) : null}
      </div>
      <ConfigForm nodeId={nodeId} spec={spec} config={config} readOnly={readOnly} secrets={secrets} onChange={onConfig} />
    </section>
  );
}

function show(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export function formatCost(micros: number): string {
  const usd = micros / 1_000_000;
  return `$${usd.toFixed(usd >= 1 ? 2 : 6)}`;
}

/** One node of a run: state, timing, cost, streamed text, port values and events. */
export function NodeRunPanel({
  nodeId,
  state,
  detail,
  stream,
  costMicros,
  tokens,
}: {
  nodeId: string;
  state: NodeRunState | undefined;
  detail: NodeRunDetail;
  stream: { text: string; open: boolean } | null;
  costMicros: number | null;
  tokens: { input: number; output: number } | null;
}) {
  return (
    <section className="stack" aria-label={`Run of node ${nodeId}`} data-testid="node-run-panel">
      <h2 className="fb-h2">
        <span className="mono">{nodeId}</span> in this run
      </h2>
      <p className="small">
        {state ? RUN_STATE_LABEL[state] : "not started"}
        {detail.durationMs !== null ? ` · ${(detail.durationMs / 1000).toFixed(2)} s` : ""}
        {costMicros !== null ? ` · ${formatCost(costMicros)}` : ""}
        {tokens ? ` · ${tokens.input} in / ${tokens.output} out tokens` : ""}
      </p>
      {detail.error ? <Alert>{detail.error}</Alert> : null}
      {stream ? (
        <div>
          <h3 className="fb-h3">Streamed text</h3>
          <pre className="run-text fb-pre" data-testid="node-run-stream" aria-busy={stream.open || undefined} role="log">
            {stream.text}
          </pre>
        </div>
      ) : null}
      <div>
        <h3 className="fb-h3">Inputs</h3>
        {detail.inputs.length === 0 ? <p className="small muted">No values in.</p> : null}
        {detail.inputs.map((v) => (
          <div key={v.port} className="small">
            <span className="mono">{v.port}</span> <span className="muted">from {v.from}</span>
            <pre className="run-text fb-pre">{show(v.value)}</pre>
          </div>
        ))}
      </div>
      <div>
        <h3 className="fb-h3">Outputs</h3>
        {detail.outputs.length === 0 ? <p className="small muted">No values out.</p> : null}
        {detail.outputs.map((v) => (
          <div key={v.port} className="small" data-testid="node-run-output" data-port={v.port}>
            <span className="mono">{v.port}</span>
            <pre className="run-text fb-pre">{show(v.value)}</pre>
          </div>
        ))}
      </div>
      <div>
        <h3 className="fb-h3">Events</h3>
        <ol className="fb-events small">
          {detail.events.map((e) => (
            <li key={e.seq}>
              <span className="mono">{e.type}</span> <span className="muted">{new Date(e.created_at).toLocaleTimeString()}</span>
            </li>
          ))}
          {detail.streamChunks > 0 ? <li className="muted">{detail.streamChunks} stream chunks</li> : null}
        </ol>
      </div>
    </section>
  );
}

export function ProblemsList({
  issues,
  checking,
  onFocus,
}: {
  issues: Issue[];
  checking: boolean;
  onFocus: (nodeId: string) => void;
}) {
  const errors = issues.filter((i) => i.severity === "error").length;
  return (
    <section className="fb-problems" aria-label="Problems" data-testid="problems">
      <h2 className="fb-h3">
        Problems{" "}
        <span className="muted small" data-testid="problems-count">
          {checking ? "checking…" : issues.length === 0 ? "none: the flow can run" : `${errors} error${errors === 1 ? "" : "s"}, ${issues.length - errors} warning${issues.length - errors === 1 ? "" : "s"}`}
        </span>
      </h2>
      {issues.length > 0 ? (
        <ul className="fb-issue-list">
          {issues.map((issue, i) => (
            <li key={i} className={issue.severity === "error" ? "fb-issue-error" : "fb-issue-warning"} data-testid="problem">
              {issue.node ? (
                <button type="button" className="fb-link" onClick={() => onFocus(issue.node!)}>
                  {issue.node}
                </button>
              ) : null}{" "}
              {issue.message}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}

type Version = Schemas["VersionOut"];

export function VersionsPanel({
  orgSlug,
  wsId,
  flowId,
  current,
  shown,
  refresh,
  onClose,
}: {
  orgSlug: string;
  wsId: string;
  flowId: string;
  current: string | null;
  shown: string | null;
  refresh: string | null;
  onClose: () => void;
}) {
  const versions = usePaged<Version>(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}/versions", {
          params: { path: { org_slug: orgSlug, ws_id: wsId, flow_id: flowId }, query: { cursor: cursor ?? undefined, page_size: 20 } },
        }),
      ) as Promise<Page<Version>>,
    [orgSlug, wsId, flowId, refresh],
  );
  return (
    <aside className="fb-versions card" aria-label="Versions" data-testid="versions">
      <div className="card-header">
        <div>
          <h2>Versions</h2>
          <p>Newest first. Open one to read it; saving always adds a new version.</p>
        </div>
        <Button size="sm" variant="ghost" onClick={onClose} aria-label="Close versions">
          ✕
        </Button>
      </div>
      <PagedTable
        list={versions}
        columns={["Version", "By", "When", "Message"]}
        empty={<EmptyState title="Not saved yet" />}
        row={(v) => (
          <tr key={v.hash} data-testid="version-row" data-hash={v.hash}>
            <td>
              <Link to={`?version=${v.hash}`} aria-label={`Open version ${v.hash.slice(0, 12)}`} className="mono">
                {v.hash.slice(0, 8)}
              </Link>
              {v.hash === current ? <span className="badge badge-success">latest</span> : null}
              {v.hash === shown && v.hash !== current ? <span className="badge">shown</span> : null}
            </td>
            <td>{v.author_email ?? "—"}</td>
            <td title={formatDate(v.created_at)}>{relativeTime(v.created_at)}</td>
            <td>{v.message || <span className="muted">—</span>}</td>
          </tr>
        )}
      />
    </aside>
  );
}

export function SaveDialog({
  onSave,
  onClose,
}: {
  onSave: (message: string) => Promise<void>;
  onClose: () => void;
}) {
  const [message, setMessage] = useState("");
  const submit = useSubmit(["message"]);
  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    if (await submit.run(() => onSave(message.trim()))) onClose();
  };
  return (
    <FormDialog title="Save a new version" onClose={onClose} onSubmit={onSubmit} submit={submit} submitLabel="Save version">
      <TextField
        label="What changed (optional)"
        name="message"
        maxLength={500}
        value={message}
        error={submit.fields.message}
        onChange={(e) => setMessage(e.target.value)}
      />
    </FormDialog>
  );
}

/** Start a run: one field per input of the flow, typed as the input node declares. */
export function RunDialog({
  document,
  onStart,
  onClose,
}: {
  document: FlowDocument;
  onStart: (inputs: Record<string, unknown>) => Promise<void>;
  onClose: () => void;
}) {
  const fields = useMemo(() => flowInputs(document), [document]);
  const [values, setValues] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const submit = useSubmit();
  const formId = useId();
  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const inputs: Record<string, unknown> = {};
    const problems: Record<string, string> = {};
    for (const field of fields) {
      const text = values[field.name] ?? "";
      if (text === "" && field.type !== "boolean") {
        if (field.required) problems[field.name] = "Required.";
        continue;
      }
      const parsed = parseRunInput(field.type, text);
      if (parsed.error) problems[field.name] = parsed.error;
      else inputs[field.name] = parsed.value;
    }
    setErrors(problems);
    if (Object.keys(problems).length > 0) return;
    if (await submit.run(() => onStart(inputs))) onClose();
  };
  return (
    <FormDialog
      title="Run the flow"
      description={fields.length === 0 ? "This flow takes no inputs." : "The run starts with these inputs."}
      onClose={onClose}
      onSubmit={onSubmit}
      submit={submit}
      submitLabel="Start run"
    >
      {fields.map((field) =>
        field.type === "boolean" ? (
          <label key={field.name} className="checkbox">
            <input
              type="checkbox"
              checked={values[field.name] === "true"}
              onChange={(e) => setValues({ ...values, [field.name]: String(e.target.checked) })}
            />
            {field.name}
          </label>
        ) : field.type === "text" || field.type === "number" ? (
          <TextField
            key={field.name}
            label={field.name}
            name={`${formId}-${field.name}`}
            type={field.type === "number" ? "number" : "text"}
            hint={field.description || `${field.type}${field.required ? "" : " (optional)"}`}
            error={errors[field.name]}
            value={values[field.name] ?? ""}
            onChange={(e) => setValues({ ...values, [field.name]: e.target.value })}
          />
        ) : (
          <Field
            key={field.name}
            label={field.name}
            error={errors[field.name]}
            hint={field.description || `${field.type} as JSON${field.required ? "" : " (optional)"}`}
          >
            {(a11y) => (
              <textarea
                className="input fb-textarea"
                {...a11y}
                value={values[field.name] ?? ""}
                onChange={(e) => setValues({ ...values, [field.name]: e.target.value })}
              />
            )}
          </Field>
        ),
      )}
    </FormDialog>
  );
}

export const SHORTCUTS: [string, string][] = [
  ["Ctrl+Z", "Undo"],
  ["Ctrl+Shift+Z or Ctrl+Y", "Redo"],
  ["Ctrl+C / Ctrl+V", "Copy and paste the selected nodes"],
  ["Delete or Backspace", "Delete the selection"],
  ["Shift+drag", "Select several nodes"],
  ["Enter on a palette item", "Add that node"],
  ["Ctrl+S", "Save a new version"],
];

export function ShortcutsHelp({ onClose }: { onClose: () => void }) {
  return (
    <div className="fb-popover card" role="dialog" aria-label="Keyboard shortcuts" data-testid="shortcuts">
      <div className="row" style={{ justifyContent: "space-between" }}>
        <h2 className="fb-h3">Keyboard shortcuts</h2>
        <Button size="sm" variant="ghost" onClick={onClose} aria-label="Close shortcuts">
          ✕
        </Button>
      </div>
      <dl className="fb-shortcuts">
        {SHORTCUTS.map(([keys, what]) => (
          <div key={keys}>
            <dt>
              <kbd>{keys}</kbd>
            </dt>
            <dd>{what}</dd>
          </div>
        ))}
      </dl>
      <p className="small muted">On a Mac, use ⌘ for Ctrl.</p>
    </div>
  );
}
