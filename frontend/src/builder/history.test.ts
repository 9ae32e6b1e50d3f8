import { describe, expect, it } from "vitest";
import { copyNodes, pasteClip } from "./clipboard";
import type { FlowDocument } from "./document";
import { historyPush, historyRedo, historyStart, historyUndo } from "./history";

describe("undo and redo", () => {
  it("walks back and forth through the edits", () => {
    let h = historyStart({ n: 0 });
    h = historyPush(h, { n: 1 });
    h = historyPush(h, { n: 2 });
    h = historyUndo(h);
    expect(h.present).toEqual({ n: 1 });
    h = historyUndo(h);
    expect(h.present).toEqual({ n: 0 });
    expect(historyUndo(h)).toBe(h);
    h = historyRedo(h);
    expect(h.present).toEqual({ n: 1 });
    h = historyRedo(h);
    expect(h.present).toEqual({ n: 2 });
    expect(historyRedo(h)).toBe(h);
  });

  it("drops the redo steps on a new edit", () => {
    let h = historyStart("a");
    h = historyPush(h, "b");
    h = historyUndo(h);
    h = historyPush(h, "c");
    expect(h.future).toEqual([]);
    expect(historyUndo(h).present).toBe("a");
  });

  it("merges edits of one group (typing in a field) into one step", () => {
    let h = historyStart("");
    h = historyPush(h, "H", "config:ask");
    h = historyPush(h, "Hi", "config:ask");
    h = historyPush(h, "Hi!", "config:ask");
    expect(historyUndo(h).present).toBe("");
  });

  it("ignores edits that change nothing", () => {
    const h = historyStart({ a: 1 });
    expect(historyPush(h, { a: 1 })).toBe(h);
  });
});

describe("copy and paste", () => {
  const doc: FlowDocument = {
    schema: 1,
    nodes: [
      { id: "inp", type: "input", config: { fields: [{ name: "q", type: "text" }] }, position: { x: 0, y: 0 } },
      { id: "ask", type: "llm_chat", config: { provider: "fake", model: "fake-echo" }, position: { x: 300, y: 0 } },
      { id: "out", type: "output", config: { name: "answer" }, position: { x: 600, y: 0 } },
    ],
    edges: [
      { from: "inp.q", to: "ask.prompt" },
      { from: "ask.text", to: "out.value" },
    ],
  };

  it("pastes copies with new ids, keeping the edges between them", () => {
    const clip = copyNodes(doc, new Set(["inp", "ask"]));
    expect(clip.edges).toEqual([{ from: "inp.q", to: "ask.prompt" }]);
    const pasted = pasteClip(clip, new Set(doc.nodes.map((n) => n.id)));
    expect(pasted.nodes.map((n) => n.id)).toEqual(["inp_1", "ask_1"]);
    expect(pasted.nodes[1]).toMatchObject({ type: "llm_chat", config: { model: "fake-echo" }, position: { x: 340, y: 40 } });
    expect(pasted.edges).toEqual([{ from: "inp_1.q", to: "ask_1.prompt" }]);
  });

  it("pastes twice without clashing, and the copies do not share config", () => {
    const clip = copyNodes(doc, new Set(["ask"]));
    const first = pasteClip(clip, new Set(["inp", "ask", "out"]));
    const second = pasteClip(clip, new Set(["inp", "ask", "out", ...first.nodes.map((n) => n.id)]));
    expect(second.nodes[0]!.id).toBe("ask_2");
    (first.nodes[0]!.config as { model: string }).model = "changed";
    expect(second.nodes[0]!.config.model).toBe("fake-echo");
    expect(doc.nodes[1]!.config.model).toBe("fake-echo");
  });
});
