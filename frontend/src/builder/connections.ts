/**
 * Which edges the canvas accepts, mirroring the server's validation (engine/_validate.py):
 * ports must exist (as the server resolved them), their types must be compatible per the API's
 * `port_compatibility`, an input takes one edge, and the graph stays acyclic. A refusal says why, and what to do.
 */
import type { Edge } from "@xyflow/react";
import { acceptedSources, canConnect, portsOf, type Catalogue, type NodePorts, type ResolvedPorts } from "./catalogue";
import type { FlowNode } from "./document";

export interface Attempt {
  source: string;
  sourceHandle?: string | null;
  target: string;
  targetHandle?: string | null;
}

export function nodePorts(node: FlowNode | undefined, catalogue: Catalogue, resolved: ResolvedPorts): NodePorts {
  if (!node) return { inputs: [], outputs: [] };
  return portsOf(catalogue.types.get(node.data.nodeType), resolved.get(node.id));
}

function reaches(from: string, to: string, edges: readonly Edge[]): boolean {
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node === to) return true;
    if (seen.has(node)) continue;
    seen.add(node);
    for (const edge of edges) if (edge.source === node) stack.push(edge.target);
  }
  return false;
}

/** Why the connection may not be made, or null when it may. */
export function connectionProblem(
  attempt: Attempt,
  nodes: readonly FlowNode[],
  edges: readonly Edge[],
  catalogue: Catalogue,
  resolved: ResolvedPorts,
): string | null {
  const sourceNode = nodes.find((n) => n.id === attempt.source);
  const targetNode = nodes.find((n) => n.id === attempt.target);
  const from = `${attempt.source}.${attempt.sourceHandle ?? ""}`;
  const to = `${attempt.target}.${attempt.targetHandle ?? ""}`;
  const output = nodePorts(sourceNode, catalogue, resolved).outputs.find((p) => p.name === attempt.sourceHandle);
  const input = nodePorts(targetNode, catalogue, resolved).inputs.find((p) => p.name === attempt.targetHandle);
  if (!output) return `${from} is not an output port: drag from an output (right side) to an input (left side).`;
  if (!input) return `${to} is not an input port: drag from an output (right side) to an input (left side).`;
  if (attempt.source === attempt.target) return `${attempt.source} cannot feed itself: flows must be acyclic.`;
  if (!canConnect(catalogue.compatibility, output.type, input.type)) {
    const accepted = acceptedSources(catalogue.compatibility, input.type).join(", ");
    return `${from} (${output.type}) cannot feed ${to} (${input.type}): that input accepts ${accepted}.`;
  }
  const taken = edges.find((e) => e.target === attempt.target && e.targetHandle === attempt.targetHandle);
  if (taken) {
    return (
      `${to} already has an edge from ${taken.source}.${taken.sourceHandle ?? ""}: an input takes one. ` +
      "Delete that edge first, or join the values with a merge node."
    );
  }
  if (reaches(attempt.target, attempt.source, edges)) {
    return `${from} -> ${to} would make a cycle: flows must be acyclic.`;
  }
  return null;
}
