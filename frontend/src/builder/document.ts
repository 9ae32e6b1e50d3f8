/**
 * The flow document (engine/_document.py) and the canvas: nodes with their config and
 * position, and edges joining `node.port` to `node.port`. Handles are named after ports.
 */
import type { Edge, Node } from "@xyflow/react";

export const SCHEMA_VERSION = 1;

export interface DocNode {
  id: string;
  type: string;
  config: Record<string, unknown>;
  position?: { x: number; y: number };
}

export interface DocEdge {
  from: string;
  to: string;
}

// A type, not an interface: it is sent as the API's free-form JSON object.
export type FlowDocument = {
  schema: number;
  nodes: DocNode[];
  edges: DocEdge[];
  settings?: Record<string, unknown>;
};

export interface FlowNodeData extends Record<string, unknown> {
  nodeType: string;
  config: Record<string, unknown>;
}

export type FlowNode = Node<FlowNodeData, "flow">;

export const EMPTY_DOCUMENT: FlowDocument = { schema: SCHEMA_VERSION, nodes: [], edges: [] };

/** Ids the engine accepts: a letter or _, then letters, digits, _ or -; at most 64. */
export const NODE_ID = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** `node.port` split at its first dot. */
export function parseRef(ref: string): { node: string; port: string } {
  const dot = ref.indexOf(".");
  return dot < 0 ? { node: ref, port: "" } : { node: ref.slice(0, dot), port: ref.slice(dot + 1) };
}

export function edgeId(from: string, to: string): string {
  return `${from}->${to}`;
}

/** Whatever came from the server, as a document the canvas can show. */
export function asDocument(raw: unknown): FlowDocument {
  const value = (typeof raw === "object" && raw !== null ? raw : {}) as Partial<FlowDocument>;
  return {
    schema: typeof value.schema === "number" ? value.schema : SCHEMA_VERSION,
    nodes: Array.isArray(value.nodes) ? value.nodes : [],
    edges: Array.isArray(value.edges) ? value.edges : [],
    ...(value.settings ? { settings: value.settings } : {}),
  };
}

export function toCanvas(document: FlowDocument): { nodes: FlowNode[]; edges: Edge[] } {
  const nodes: FlowNode[] = document.nodes.map((node, index) => ({
    id: node.id,
    type: "flow",
    position: node.position ?? { x: index * 260, y: 0 },
    data: { nodeType: node.type, config: node.config ?? {} },
  }));
  const edges: Edge[] = document.edges.map((edge) => {
    const source = parseRef(edge.from);
    const target = parseRef(edge.to);
    return {
      id: edgeId(edge.from, edge.to),
      source: source.node,
      sourceHandle: source.port,
      target: target.node,
      targetHandle: target.port,
    };
  });
  return { nodes, edges };
}

/** The canvas as a document; positions are rounded to whole pixels so saves stay stable. */
export function toDocument(
  nodes: readonly FlowNode[],
  edges: readonly Edge[],
  settings?: Record<string, unknown>,
): FlowDocument {
  return {
    schema: SCHEMA_VERSION,
    nodes: nodes.map((node) => ({
      id: node.id,
      type: node.data.nodeType,
      config: node.data.config,
      position: { x: Math.round(node.position.x), y: Math.round(node.position.y) },
    })),
    edges: edges.map((edge) => ({
      from: `${edge.source}.${edge.sourceHandle ?? ""}`,
      to: `${edge.target}.${edge.targetHandle ?? ""}`,
    })),
    ...(settings ? { settings } : {}),
  };
}

/** Two documents are the same flow (used for "unsaved changes"). */
export function sameDocument(a: FlowDocument, b: FlowDocument): boolean {
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

function normalise(document: FlowDocument): FlowDocument {
  return {
    schema: document.schema,
    nodes: document.nodes.map((n) => ({
      id: n.id,
      type: n.type,
      config: sortKeys(n.config) as Record<string, unknown>,
      position: { x: Math.round(n.position?.x ?? 0), y: Math.round(n.position?.y ?? 0) },
    })),
    edges: document.edges.map((e) => ({ from: e.from, to: e.to })),
  };
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/** A fresh node id from `base` ("llm_chat" -> "llm_chat_1", "ask" -> "ask_2") not in `taken`. */
export function uniqueNodeId(base: string, taken: ReadonlySet<string>): string {
  let stem = base.replace(/[^A-Za-z0-9_-]/g, "_").replace(/_\d+$/, "").slice(0, 56) || "node";
  if (!/^[A-Za-z_]/.test(stem)) stem = `n_${stem}`;
  for (let n = 1; ; n++) {
    const id = `${stem}_${n}`;
    if (!taken.has(id)) return id;
  }
}
