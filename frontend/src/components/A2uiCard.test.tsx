import { fireEvent, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { A2uiCard, type CardContent } from "./A2uiCard";
import { absolutePath, readPath, safeMediaUrl, writePath } from "./a2ui";

const SURFACE = {
  version: "v0.9",
  catalogId: "https://a2ui.org/specification/v0_9/catalogs/basic/catalog.json",
  surfaceId: "choose",
  root: "root",
  components: [
    { id: "root", component: "Column", children: ["title", "who", "note", "urgent", "plan", "buttons"] },
    { id: "title", component: "Text", variant: "h2", text: { path: "/customer/name" } },
    { id: "who", component: "Text", text: "Pick a plan for this customer." },
    {
      id: "note",
      component: "TextField",
      label: "Note",
      value: { path: "/note" },
      checks: [{ condition: { call: "required", args: { value: { path: "/note" } } }, message: "Write a note" }],
    },
    { id: "urgent", component: "CheckBox", label: "Urgent", value: false },
    {
      id: "plan",
      component: "ChoicePicker",
      label: "Plan",
      variant: "mutuallyExclusive",
      value: { path: "/plan" },
      options: [
        { label: "Basic", value: "basic" },
        { label: { path: "/proLabel" }, value: "pro" },
      ],
    },
    { id: "buttons", component: "Row", children: ["ok", "no"] },
    { id: "ok", component: "Button", variant: "primary", child: "ok-text", action: { event: { name: "approve", context: { plan: { path: "/plan" } } } } },
    { id: "ok-text", component: "Text", text: "Approve plan" },
    { id: "no", component: "Button", child: "no-text", action: { event: { name: "decline" } } },
    { id: "no-text", component: "Text", text: "Decline" },
  ],
};

function card(extra: Partial<CardContent> = {}): CardContent {
  return {
    surface: SURFACE,
    data: { customer: { name: "Initech" }, note: "", plan: ["basic"], proLabel: "Pro (yearly)" },
    action: null,
    values: null,
    ...extra,
  };
}

function withComponents(components: unknown[], data: Record<string, unknown> = {}): CardContent {
  return { surface: { ...SURFACE, components }, data, action: null, values: null };
}

describe("A2uiCard", () => {
  it("draws the bound text and inputs, and acts with the changed inputs' values", async () => {
    const onAction = vi.fn();
    render(<A2uiCard card={card()} onAction={onAction} />);
    const root = screen.getByTestId("a2ui-card");
    expect(within(root).getByRole("heading", { name: "Initech" })).toBeInTheDocument();
    expect(within(root).getByText("Pick a plan for this customer.")).toBeInTheDocument();
    expect(screen.getByTestId("a2ui-note")).toBe(screen.getByLabelText("Note"));
    expect(screen.getByTestId("a2ui-urgent")).not.toBeChecked();
    expect(screen.getByLabelText("Basic")).toBeChecked();
    expect(screen.getByLabelText("Pro (yearly)")).not.toBeChecked();

    await userEvent.type(screen.getByLabelText("Note"), "call first");
    await userEvent.click(screen.getByLabelText("Urgent"));
    await userEvent.click(screen.getByLabelText("Pro (yearly)"));
    expect(screen.getByLabelText("Basic")).not.toBeChecked();
    await userEvent.click(screen.getByRole("button", { name: "Approve plan" }));

    expect(onAction).toHaveBeenCalledTimes(1);
    expect(onAction).toHaveBeenCalledWith({
      name: "approve",
      values: { note: "call first", urgent: true, plan: ["pro"] },
    });
    expect(screen.getByTestId("a2ui-ok")).toHaveAttribute("data-action", "approve");
  });

  it("checks an input before acting and shows the message by it", async () => {
    const onAction = vi.fn();
    render(<A2uiCard card={card()} onAction={onAction} />);
    await userEvent.click(screen.getByTestId("a2ui-no"));
    expect(onAction).not.toHaveBeenCalled();
    expect(screen.getByTestId("a2ui-error-note")).toHaveTextContent("Write a note");
    expect(screen.getByLabelText("Note")).toHaveAttribute("aria-invalid", "true");

    await userEvent.type(screen.getByLabelText("Note"), "x");
    expect(screen.queryByTestId("a2ui-error-note")).not.toBeInTheDocument();
    await userEvent.click(screen.getByTestId("a2ui-no"));
    expect(onAction).toHaveBeenCalledWith({ name: "decline", values: { note: "x" } });
  });

  it("shows the server's message by its input", () => {
    render(<A2uiCard card={card()} onAction={vi.fn()} errors={{ plan: "choose at most one option", note: "too short" }} />);
    expect(screen.getByTestId("a2ui-error-note")).toHaveTextContent("too short");
    expect(screen.getByLabelText("Note")).toHaveAccessibleDescription("too short");
    expect(within(screen.getByTestId("a2ui-plan")).getByRole("alert")).toHaveTextContent("choose at most one option");
  });

  it("shows an answered card read-only, with the action taken and the values", () => {
    render(
      <A2uiCard
        readOnly
        card={card({
          action: { name: "approve", sourceComponentId: "ok", surfaceId: "choose", context: { plan: ["pro"] } },
          values: { note: "call first", urgent: true, plan: ["pro"] },
        })}
      />,
    );
    expect(screen.getByLabelText("Note")).toHaveValue("call first");
    expect(screen.getByLabelText("Note")).toBeDisabled();
    expect(screen.getByLabelText("Urgent")).toBeChecked();
    expect(screen.getByLabelText("Urgent")).toBeDisabled();
    expect(screen.getByLabelText("Pro (yearly)")).toBeChecked();
    expect(screen.getByLabelText("Pro (yearly)")).toBeDisabled();
    expect(screen.getByTestId("a2ui-ok")).toBeDisabled();
    expect(screen.getByTestId("a2ui-ok")).toHaveAttribute("aria-pressed", "true");
    expect(screen.getByTestId("a2ui-no")).toHaveAttribute("aria-pressed", "false");
    expect(screen.getByTestId("a2ui-action-taken")).toHaveTextContent("approve");
    expect(screen.getByTestId("a2ui-value-urgent")).toHaveTextContent("yes");
    expect(screen.getByTestId("a2ui-value-plan")).toHaveTextContent("pro");
  });

  it("repeats a template over a data list, with paths relative to each item", () => {
    const surface = withComponents(
      [
        { id: "root", component: "List", children: { componentId: "item", path: "/items" } },
        { id: "item", component: "Text", text: { path: "name" } },
        { id: "go", component: "Button", child: "item", action: { event: { name: "go" } } },
      ],
      { items: [{ name: "First" }, { name: "Second" }] },
    );
    render(<A2uiCard card={surface} onAction={vi.fn()} />);
    expect(screen.getByText("First")).toBeInTheDocument();
    expect(screen.getByText("Second")).toBeInTheDocument();
  });

  it("edits inputs that are not bound by path, and sends numbers and dates in their types", async () => {
    const onAction = vi.fn();
    const surface = withComponents([
      { id: "root", component: "Column", children: ["amount", "when", "level", "send"] },
      { id: "amount", component: "TextField", label: "Amount", value: "10", variant: "number" },
      { id: "when", component: "DateTimeInput", label: "When", value: "", enableDate: true },
      { id: "level", component: "Slider", label: "Level", value: 2, min: 0, max: 5 },
      { id: "send", component: "Button", child: "send-text", action: { event: { name: "send" } } },
      { id: "send-text", component: "Text", text: "Send" },
    ]);
    render(<A2uiCard card={surface} onAction={onAction} />);
    expect(screen.getByLabelText("Amount")).toHaveValue("10");
    await userEvent.clear(screen.getByLabelText("Amount"));
    await userEvent.type(screen.getByLabelText("Amount"), "12.5");
    expect(screen.getByTestId("a2ui-when")).toHaveAttribute("type", "date");
    fireEvent.change(screen.getByTestId("a2ui-when"), { target: { value: "2026-12-01" } });
    fireEvent.change(screen.getByTestId("a2ui-level"), { target: { value: "4" } });
    await userEvent.click(screen.getByRole("button", { name: "Send" }));
    expect(onAction).toHaveBeenCalledWith({ name: "send", values: { amount: "12.5", when: "2026-12-01", level: 4 } });
  });

  it("loads media only from http(s) URLs", () => {
    const surface = withComponents(
      [
        { id: "root", component: "Row", children: ["good", "bad", "video", "audio", "go"] },
        { id: "good", component: "Image", url: { path: "/logo" }, description: "Logo" },
        { id: "bad", component: "Image", url: "javascript:alert(1)", description: "Trap" },
        { id: "video", component: "Video", url: "data:video/mp4;base64,AAAA" },
        { id: "audio", component: "AudioPlayer", url: "https://example.com/a.mp3", description: "Message" },
        { id: "go", component: "Button", child: "good", action: { event: { name: "go" } } },
      ],
      { logo: "https://example.com/logo.png" },
    );
    const { container } = render(<A2uiCard card={surface} onAction={vi.fn()} />);
    const images = screen.getAllByRole("img", { name: "Logo" });
    expect(images[0]).toHaveAttribute("src", "https://example.com/logo.png");
    expect(screen.queryByRole("img", { name: "Trap" })).not.toBeInTheDocument();
    expect(screen.getByText("[image not shown: Trap]")).toBeInTheDocument();
    expect(container.querySelector("video")).toBeNull();
    expect(container.querySelector("audio")).toHaveAttribute("src", "https://example.com/a.mp3");
    expect(container.innerHTML).not.toContain("javascript:");
  });

  it("switches tabs and opens a modal from its trigger button without acting", async () => {
    const onAction = vi.fn();
    const surface = withComponents([
      { id: "root", component: "Column", children: ["tabs", "more"] },
      { id: "tabs", component: "Tabs", tabs: [{ title: "One", child: "one" }, { title: "Two", child: "two" }] },
      { id: "one", component: "Text", text: "First tab" },
      { id: "two", component: "Text", text: "Second tab" },
      { id: "more", component: "Modal", trigger: "open", content: "details" },
      { id: "open", component: "Button", child: "open-text", action: { event: { name: "opened" } } },
      { id: "open-text", component: "Text", text: "Details" },
      { id: "details", component: "Text", text: "All the details" },
    ]);
    render(<A2uiCard card={surface} onAction={onAction} />);
    expect(screen.getByText("First tab")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("tab", { name: "Two" }));
    expect(screen.getByText("Second tab")).toBeInTheDocument();
    expect(screen.queryByText("First tab")).not.toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Details" }));
    expect(within(screen.getByRole("dialog")).getByText("All the details")).toBeInTheDocument();
    expect(onAction).not.toHaveBeenCalled();
    await userEvent.click(screen.getByRole("button", { name: "Close" }));
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
  });

  it("draws a cycle once and says when there is nothing to draw", () => {
    const cyclic = withComponents([
      { id: "root", component: "Card", child: "inner" },
      { id: "inner", component: "Column", children: ["root", "label"] },
      { id: "label", component: "Text", text: "Once" },
    ]);
    const { unmount } = render(<A2uiCard card={cyclic} />);
    expect(screen.getAllByText("Once")).toHaveLength(1);
    unmount();
    render(<A2uiCard card={withComponents([{ id: "other", component: "Text", text: "x" }])} />);
    expect(screen.getByTestId("a2ui-card-invalid")).toBeInTheDocument();
  });
});

describe("a2ui helpers", () => {
  it("reads and writes JSON Pointer paths without changing the model", () => {
    const model = { a: { "b/c": [1, 2] } };
    expect(readPath(model, "/a/b~1c/1")).toBe(2);
    expect(readPath(model, "/a/missing")).toBeUndefined();
    const written = writePath(model, "/a/new/x", "y");
    expect(written).toEqual({ a: { "b/c": [1, 2], new: { x: "y" } } });
    expect(model).toEqual({ a: { "b/c": [1, 2] } });
    expect(absolutePath("name", "/items/0")).toBe("/items/0/name");
    expect(absolutePath("/top", "/items/0")).toBe("/top");
  });

  it("lets only http(s) URLs through", () => {
    expect(safeMediaUrl("https://x.test/a.png")).toBe("https://x.test/a.png");
    expect(safeMediaUrl("http://x.test/a.png")).toBe("http://x.test/a.png");
    expect(safeMediaUrl("javascript:alert(1)")).toBeNull();
    expect(safeMediaUrl("data:image/png;base64,AA")).toBeNull();
    expect(safeMediaUrl("/relative.png")).toBeNull();
    expect(safeMediaUrl(42)).toBeNull();
  });
});
