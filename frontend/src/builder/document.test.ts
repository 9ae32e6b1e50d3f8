import { describe, expect, it } from "vitest";
import { asDocument, sameDocument, toCanvas, toDocument, uniqueNodeId, type FlowDocument } from "./document";
import { autoLayout } from "./layout";

const DOC: FlowDocument = {
  schema: 1,
  nodes: [
    { id: "inp", type: "input", config: { fields: [{ name: "q", type: "text" }] }, position: { x: 0, y: 40 } },
    { id: "ask", type: "llm_chat", config: { provider: "fake", model: "fake-echo" }, position: { x: 300, y: 40 } },
    { id: "out", type: "output", config: { name: "answer" }, position: { x: 600, y: 40 } },
  ],
  edges: [
    { from: "inp.q", to: "ask.prompt" },
    { from: "ask.text", to: "out.value" },
  ],
  settings: { fail_fast: false },
};

describe("document <-> canvas", () => {
  it("round-trips a document through the canvas unchanged", () => {
    const { nodes, edges } = toCanvas(DOC);
    expect(toDocument(nodes, edges, DOC.settings)).toEqual(DOC);
  });

  it("joins edges to handles named after ports", () => {
    const { edges } = toCanvas(DOC);
    expect(edges[0]).toMatchObject({ source: "inp", sourceHandle: "q", target: "ask", targetHandle: "prompt" });
  });

  it("places nodes without a position and rounds positions when saving", () => {
    const { nodes, edges } = toCanvas({ schema: 1, nodes: [{ id: "a", type: "output", config: {} }], edges: [] });
    expect(nodes[0]!.position).toEqual({ x: 0, y: 0 });
    nodes[0]!.position = { x: 10.4, y: 20.6 };
    expect(toDocument(nodes, edges).nodes[0]!.position).toEqual({ x: 10, y: 21 });
  });

  it("compares documents by content, not key order", () => {
    const reordered = { ...DOC, nodes: DOC.nodes.map((n) => ({ config: n.config, type: n.type, id: n.id, position: n.position })) };
    expect(sameDocument(DOC, reordered)).toBe(true);
    expect(sameDocument(DOC, { ...DOC, edges: DOC.edges.slice(1) })).toBe(false);
  });

  it("reads an empty or partial document", () => {
    expect(asDocument(null)).toEqual({ schema: 1, nodes: [], edges: [] });
  });

  it("makes fresh, valid node ids", () => {
    expect(uniqueNodeId("llm_chat", new Set())).toBe("llm_chat_1");
    expect(uniqueNodeId("ask_1", new Set(["ask_1"]))).toBe("ask_2");
    expect(uniqueNodeId("9lives", new Set())).toBe("n_9lives_1");
  });
});

describe("auto-layout", () => {
  it("lays the flow out left to right", () => {
    const positions = autoLayout(
      DOC.nodes.map((n) => ({ id: n.id })),
      [
        { source: "inp", target: "ask" },
        { source: "ask", target: "out" },
      ],
    );
    expect(positions.get("inp")!.x).toBeLessThan(positions.get("ask")!.x);
    expect(positions.get("ask")!.x).toBeLessThan(positions.get("out")!.x);
  });
});
