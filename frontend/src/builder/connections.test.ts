import type { Edge } from "@xyflow/react";
import { describe, expect, it } from "vitest";
import { acceptedSources, portsOf, toResolvedPorts } from "./catalogue";
import { connectionProblem } from "./connections";
import { toCanvas, type FlowDocument } from "./document";
import { CATALOGUE } from "./fixtures";

const DOC: FlowDocument = {
  schema: 1,
  nodes: [
    { id: "inp", type: "input", config: { fields: [{ name: "q", type: "text" }, { name: "n", type: "number" }] } },
    { id: "ask", type: "llm_chat", config: { provider: "fake", model: "fake-echo" } },
    { id: "out", type: "output", config: { name: "answer" } },
    { id: "vault", type: "secret_sink", config: {} },
  ],
  edges: [{ from: "inp.q", to: "ask.prompt" }],
};

/** The `ports` of the server's validation of DOC (and the template node `t` used below), as
 * POST .../flows/validate answers them: the canvas draws dynamic nodes' handles from these. */
const text = (name: string, type = "text", required = true) => ({ name, type, required, description: "" });
const RESOLVED = toResolvedPorts({
  inp: { inputs: [], outputs: [text("q"), text("n", "number")] },
  out: { inputs: [text("value", "any")], outputs: [] },
  t: { inputs: [text("a", "any")], outputs: [text("text")] },
});

function attempt(from: string, to: string) {
  const [source, sourceHandle] = from.split(".");
  const [target, targetHandle] = to.split(".");
  return { source: source!, sourceHandle, target: target!, targetHandle };
}

describe("connection rules", () => {
  const { nodes, edges } = toCanvas(DOC);

  it("accepts compatible ports per the API's table", () => {
    expect(connectionProblem(attempt("ask.text", "out.value"), nodes, edges, CATALOGUE, RESOLVED)).toBeNull();
    expect(connectionProblem(attempt("ask.stream", "out.value"), nodes, edges, CATALOGUE, RESOLVED)).toBeNull();
  });

  it("refuses incompatible types and says what the input accepts", () => {
    expect(connectionProblem(attempt("inp.q", "vault.key"), nodes, edges, CATALOGUE, RESOLVED)).toBe(
      "inp.q (text) cannot feed vault.key (secret_ref): that input accepts secret_ref.",
    );
    expect(connectionProblem(attempt("inp.q", "ask.messages"), nodes, edges, CATALOGUE, RESOLVED)).toBe(
      "inp.q (text) cannot feed ask.messages (messages): that input accepts messages, any.",
    );
  });

  it("follows the API's table, not a copy: another table gives other answers", () => {
    const strict = { ...CATALOGUE, compatibility: { ...CATALOGUE.compatibility, text: ["text"] } };
    expect(connectionProblem(attempt("ask.text", "out.value"), nodes, edges, strict, RESOLVED)).toMatch(/cannot feed out.value \(any\)/);
  });

  it("lets an input take one edge only", () => {
    expect(connectionProblem(attempt("inp.n", "ask.prompt"), nodes, edges, CATALOGUE, RESOLVED)).toMatch(
      /^ask.prompt already has an edge from inp.q: an input takes one/,
    );
  });

  it("refuses cycles and self-loops", () => {
    const cyclic: Edge[] = [...edges, { id: "e2", source: "ask", sourceHandle: "text", target: "out", targetHandle: "value" }];
    expect(connectionProblem(attempt("ask.text", "ask.messages"), nodes, cyclic, CATALOGUE, RESOLVED)).toMatch(/cannot feed itself/);
    const loop = toCanvas({
      ...DOC,
      nodes: [...DOC.nodes, { id: "t", type: "template", config: { template: "{{ a }}" } }],
      edges: [{ from: "inp.q", to: "t.a" }, { from: "t.text", to: "ask.prompt" }],
    });
    expect(connectionProblem(attempt("ask.text", "t.a"), loop.nodes, [], CATALOGUE, RESOLVED)).toBeNull();
    expect(connectionProblem(attempt("ask.usage", "inp.q"), loop.nodes, loop.edges, CATALOGUE, RESOLVED)).toMatch(/not an input port/);
  });

  it("refuses ports that do not exist", () => {
    expect(connectionProblem(attempt("out.value", "ask.prompt"), nodes, edges, CATALOGUE, RESOLVED)).toMatch(/not an output port/);
  });

  it("lists the accepted source types of an input", () => {
    expect(acceptedSources(CATALOGUE.compatibility, "text")).toEqual(["text", "number", "boolean", "stream", "any"]);
  });
});

describe("ports of configured nodes", () => {
  it("are the server's for node types whose ports follow their config", () => {
    expect(portsOf(CATALOGUE.types.get("input"), RESOLVED.get("inp")).outputs).toEqual([
      { name: "q", type: "text", required: true, description: "" },
      { name: "n", type: "number", required: true, description: "" },
    ]);
    expect(portsOf(CATALOGUE.types.get("output"), RESOLVED.get("out")).inputs[0]?.type).toBe("any");
  });

  it("are the type's own until the server has answered, and for fixed types always", () => {
    expect(portsOf(CATALOGUE.types.get("input"), undefined).outputs).toEqual([]);
    const llm = CATALOGUE.types.get("llm_chat");
    expect(portsOf(llm, { inputs: [], outputs: [] }).outputs.map((p) => p.name)).toEqual(["text", "stream", "usage"]);
  });

  it("refuses a connection to a port the server has not given the node", () => {
    const { nodes } = toCanvas({ ...DOC, edges: [] });
    expect(connectionProblem(attempt("inp.q", "out.value"), nodes, [], CATALOGUE, new Map())).toMatch(
      /inp.q is not an output port/,
    );
  });
});
