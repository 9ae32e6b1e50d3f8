/** Copy and paste of nodes: pasted nodes get new ids, and the edges among them come along. */
import { parseRef, uniqueNodeId, type DocEdge, type DocNode, type FlowDocument } from "./document";

export interface Clip {
  nodes: DocNode[];
  edges: DocEdge[];
}

/** The selected nodes and the edges between them (edges to the rest of the flow stay behind). */
export function copyNodes(document: FlowDocument, selected: ReadonlySet<string>): Clip {
  return {
    nodes: structuredClone(document.nodes.filter((n) => selected.has(n.id))),
    edges: document.edges
      .filter((e) => selected.has(parseRef(e.from).node) && selected.has(parseRef(e.to).node))
      .map((e) => ({ ...e })),
  };
}

/** The clip's nodes and edges with fresh ids (not in `taken`), moved by `offset`. */
export function pasteClip(clip: Clip, taken: ReadonlySet<string>, offset = { x: 40, y: 40 }): Clip {
  const used = new Set(taken);
  const ids = new Map<string, string>();
  for (const node of clip.nodes) {
    const id = uniqueNodeId(node.id, used);
    used.add(id);
    ids.set(node.id, id);
  }
  const rename = (ref: string) => {
    const { node, port } = parseRef(ref);
    return `${ids.get(node) ?? node}.${port}`;
  };
  return {
    nodes: clip.nodes.map((node) => ({
      ...structuredClone(node),
      id: ids.get(node.id)!,
      position: { x: (node.position?.x ?? 0) + offset.x, y: (node.position?.y ?? 0) + offset.y },
    })),
    edges: clip.edges.map((edge) => ({ from: rename(edge.from), to: rename(edge.to) })),
  };
}
