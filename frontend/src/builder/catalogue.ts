/**
 * The node types a flow may use, as `GET /api/node-types` describes them, and the ports a
 * node has once configured. Which output may feed which input comes from the API's
 * `port_compatibility` table, never from a copy kept here.
 */

export interface PortSpec {
  name: string;
  type: string;
  required: boolean;
  description: string;
}

export type JsonSchema = Record<string, unknown>;

export interface NodeTypeSpec {
  type: string;
  title: string;
  description: string;
  category: string;
  effect: string;
  config_schema: JsonSchema;
  inputs: PortSpec[];
  outputs: PortSpec[];
  dynamic_ports: boolean;
}

export interface ModelSpec {
  provider: string;
  model: string;
}

export interface Catalogue {
  types: Map<string, NodeTypeSpec>;
  /** output port type -> the input port types it may connect to */
  compatibility: Record<string, string[]>;
  models: ModelSpec[];
}

export interface NodeTypesResponse {
  node_types: Record<string, unknown>[];
  port_compatibility: Record<string, string[]>;
  models: Record<string, unknown>[];
}

function text(value: unknown, fallback = ""): string {
  return typeof value === "string" ? value : fallback;
}

function ports(value: unknown): PortSpec[] {
  if (!Array.isArray(value)) return [];
  return value.map((p: Record<string, unknown>) => ({
    name: text(p.name),
    type: text(p.type, "any"),
    required: p.required !== false,
    description: text(p.description),
  }));
}

/** The API's answer, typed (its node types are plain JSON objects in the OpenAPI schema). */
export function toCatalogue(response: NodeTypesResponse): Catalogue {
  const types = new Map<string, NodeTypeSpec>();
  for (const raw of response.node_types) {
    const spec: NodeTypeSpec = {
      type: text(raw.type),
      title: text(raw.title, text(raw.type)),
      description: text(raw.description),
      category: text(raw.category, "general"),
      effect: text(raw.effect),
      config_schema: (raw.config_schema as JsonSchema | undefined) ?? { type: "object" },
      inputs: ports(raw.inputs),
      outputs: ports(raw.outputs),
      dynamic_ports: raw.dynamic_ports === true,
    };
    types.set(spec.type, spec);
  }
  const models = response.models.map((m) => ({ provider: text(m.provider), model: text(m.model) }));
  return { types, compatibility: response.port_compatibility, models };
}

/** Whether an output of type `source` may feed an input of type `target`. */
export function canConnect(compatibility: Record<string, string[]>, source: string, target: string): boolean {
  return (compatibility[source] ?? []).includes(target);
}

/** The output types an input of type `target` accepts (for refusals and tooltips). */
export function acceptedSources(compatibility: Record<string, string[]>, target: string): string[] {
  return Object.keys(compatibility).filter((source) => canConnect(compatibility, source, target));
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function port(name: string, type: string, required = true): PortSpec {
  return { name, type, required, description: "" };
}

const JINJA_WORDS = new Set([
  "and", "or", "not", "in", "is", "if", "else", "elif", "endif", "for", "endfor", "set", "endset", "with",
  "endwith", "block", "endblock", "macro", "endmacro", "call", "endcall", "filter", "endfilter", "raw", "endraw",
  "true", "false", "none", "True", "False", "None", "loop", "range", "dict", "lipsum", "cycler", "joiner",
  "namespace", "recursive", "as", "import", "from", "include", "extends",
]);

/**
 * The variables a Jinja template reads: the template node's input ports. An approximation of
 * the server's parser (jinja2.meta), good for drawing handles; the server's validation decides.
 */
export function templateVariables(source: string): string[] {
  const found = new Set<string>();
  const declared = new Set<string>();
  const blocks = source.match(/\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g) ?? [];
  for (const block of blocks) {
    const body = block.slice(2, -2).replace(/'[^']*'|"[^"]*"/g, " ");
    const loop = /^\s*-?\s*for\s+([\w\s,]+?)\s+in\b/.exec(body);
    loop?.[1]?.split(",").forEach((name) => declared.add(name.trim()));
    const assign = /^\s*-?\s*set\s+(\w+)/.exec(body);
    if (assign?.[1]) declared.add(assign[1]);
    for (const match of body.matchAll(/\b[A-Za-z_]\w*/g)) {
      const name = match[0];
      const before = body.slice(0, match.index).trimEnd();
      const after = body.slice(match.index + name.length).trimStart();
      if (JINJA_WORDS.has(name) || /[.|]$/.test(before) || /\bis(\s+not)?$/.test(before)) continue; // attribute, filter, test
      if (/^=(?!=)/.test(after)) continue; // a keyword argument
      found.add(name);
    }
  }
  return [...found].filter((name) => !declared.has(name)).sort();
}

/**
 * A node's ports given its config. Most types have fixed ports; those flagged `dynamic_ports`
 * derive them from their config the way the engine's node classes do.
 */
export function portsOf(spec: NodeTypeSpec | undefined, configValue: unknown): { inputs: PortSpec[]; outputs: PortSpec[] } {
  if (!spec) return { inputs: [], outputs: [] };
  const config = record(configValue);
  const typeOr = (fallback: string) => (typeof config.type === "string" ? config.type : fallback);
  switch (spec.dynamic_ports ? spec.type : "") {
    case "input": {
      const fields = Array.isArray(config.fields) ? config.fields.map(record) : [];
      return {
        inputs: [],
        outputs: fields
          .filter((f) => typeof f.name === "string" && f.name !== "")
          .map((f) => port(String(f.name), typeof f.type === "string" ? f.type : "any", f.required !== false)),
      };
    }
    case "output":
      return { inputs: [port("value", typeOr("any"))], outputs: [] };
    case "constant":
      return { inputs: [], outputs: [port("value", typeOr("any"))] };
    case "merge": {
      const count = typeof config.inputs === "number" ? Math.min(Math.max(Math.trunc(config.inputs), 2), 32) : 2;
      return {
        inputs: Array.from({ length: count }, (_, i) => port(`in_${i + 1}`, "any", false)),
        outputs: spec.outputs,
      };
    }
    case "switch": {
      const cases = Array.isArray(config.cases) ? config.cases.filter((c): c is string => typeof c === "string") : [];
      return {
        inputs: spec.inputs,
        outputs: [...cases.filter((c) => c !== "default" && c !== "").map((c) => port(c, "any")), port("default", "any")],
      };
    }
    case "prompt_template": {
      const names = Array.isArray(config.variables) ? config.variables.filter((v): v is string => typeof v === "string") : [];
      return { inputs: names.filter(Boolean).map((name) => port(name, "any")), outputs: spec.outputs };
    }
    case "template":
      return {
        inputs: templateVariables(typeof config.template === "string" ? config.template : "").map((n) => port(n, "any")),
        outputs: spec.outputs,
      };
    default:
      return { inputs: spec.inputs, outputs: spec.outputs };
  }
}

/** A starting config a node of this type is valid with, where the schema makes that obvious. */
export function initialConfig(spec: NodeTypeSpec, models: ModelSpec[], nodeId: string): Record<string, unknown> {
  const schema = spec.config_schema;
  const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
  const properties = record(schema.properties);
  const config: Record<string, unknown> = {};
  if ("provider" in properties && "model" in properties && required.includes("model")) {
    const first = models[0];
    if (first) {
      config.provider = first.provider;
      config.model = first.model;
    }
  }
  if (spec.type === "input") config.fields = [];
  if (spec.type === "output" && required.includes("name")) config.name = nodeId.replace(/-/g, "_");
  return config;
}

/** The distinct port types in the catalogue, in a stable order (for the legend). */
export function portTypes(compatibility: Record<string, string[]>): string[] {
  return Object.keys(compatibility);
}

const PALETTE = [
  "#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626", "#4b5563", "#9333ea",
  "#0d9488", "#ca8a04",
];

/** One colour per port type, assigned in the order the API lists the types. */
export function portColour(compatibility: Record<string, string[]>, type: string): string {
  const index = portTypes(compatibility).indexOf(type);
  return index < 0 ? "#6b7280" : PALETTE[index % PALETTE.length]!;
}
