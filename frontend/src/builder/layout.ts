/** Auto-layout: the flow drawn left to right by dagre, inputs on the left, outputs on the right. */
import { Graph, layout } from "@dagrejs/dagre";

export interface Box {
  id: string;
  width?: number;
  height?: number;
}

const DEFAULT_SIZE = { width: 220, height: 120 };

/** The top-left position of each node. */
export function autoLayout(
  nodes: readonly Box[],
  edges: readonly { source: string; target: string }[],
): Map<string, { x: number; y: number }> {
  const graph = new Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 80, marginx: 20, marginy: 20 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) {
    graph.setNode(node.id, { width: node.width ?? DEFAULT_SIZE.width, height: node.height ?? DEFAULT_SIZE.height });
  }
  for (const edge of edges) {
    if (graph.hasNode(edge.source) && graph.hasNode(edge.target)) graph.setEdge(edge.source, edge.target);
  }
  layout(graph);
  const positions = new Map<string, { x: number; y: number }>();
  for (const node of nodes) {
    const placed = graph.node(node.id);
    const width = node.width ?? DEFAULT_SIZE.width;
    const height = node.height ?? DEFAULT_SIZE.height;
    positions.set(node.id, { x: Math.round(placed.x - width / 2), y: Math.round(placed.y - height / 2) });
  }
  return positions;
}
