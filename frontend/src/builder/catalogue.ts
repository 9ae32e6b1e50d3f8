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

export interface NodePorts {
  inputs: PortSpec[];
  outputs: PortSpec[];
}

/** The ports of each node as the server resolved them from its config (`ports` of the flow's
 * validation): node id -> ports. */
export type ResolvedPorts = ReadonlyMap<string, NodePorts>;

/** The server's `ports` of a validation, typed. */
export function toResolvedPorts(raw: Record<string, { inputs: unknown; outputs: unknown }>): Map<string, NodePorts> {
  return new Map(Object.entries(raw).map(([id, p]) => [id, { inputs: ports(p.inputs), outputs: ports(p.outputs) }]));
}

/**
 * A node's ports. Most types have fixed ports; those flagged `dynamic_ports` (an input node's
 * fields, a template's variables, ...) have the ports the server resolved from their config,
 * so the canvas never re-implements the engine's rules. Until the server has answered for a
 * node, it has the ports of its type with an empty config.
 */
export function portsOf(spec: NodeTypeSpec | undefined, resolved?: NodePorts): NodePorts {
  if (!spec) return { inputs: [], outputs: [] };
  if (spec.dynamic_ports && resolved) return resolved;
  return { inputs: spec.inputs, outputs: spec.outputs };
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
