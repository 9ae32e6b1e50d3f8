import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ME, installFakeFetch } from "../test/fakeFetch";
import { renderPage } from "../test/render";
import { InboxPage, type HumanRequest } from "./Inbox";

beforeEach(() => {
  document.cookie = "csrftoken=t; path=/";
});
afterEach(() => vi.unstubAllGlobals());

const RUN_ID = "11111111-2222-3333-4444-555555555555";
const ANSWER = `POST /api/orgs/acme/workspaces/ws-1/runs/${RUN_ID}/requests/ask/answer`;

function humanRequest(extra: Partial<HumanRequest> = {}): HumanRequest {
  return {
    run_id: RUN_ID,
    node_id: "ask",
    node: "ask",
    kind: "approval",
    tool_call: null,
    flow_id: "f-1",
    flow_name: "Payments",
    org_slug: "acme",
    workspace_id: "ws-1",
    title: "Pay the supplier",
    message: "Pay 120 EUR to Initech?",
    data: { amount: 120, supplier: "Initech" },
    approvers: { role: "editor", users: [], caller: false },
    status: "pending",
    can_answer: true,
    comment: "",
    answered_by: null,
    answered_at: null,
    created_at: "2026-01-01T00:00:00Z",
    deadline: "2026-01-02T00:00:00Z",
    ...extra,
  };
}

function open(items: HumanRequest[], answer: Parameters<typeof installFakeFetch>[0][string]) {
  const fake = installFakeFetch({ "GET /api/inbox": { body: items }, [ANSWER]: answer });
  renderPage(<InboxPage />, { path: "/inbox", me: ME, role: "member" });
  return fake;
}

describe("inbox", () => {
  it("shows each pending request with its data, and approving removes it with a status line", async () => {
    const other = humanRequest({ node_id: "ask2", title: "Ship the order", data: [1, 2] });
    const fake = open([humanRequest(), other], {
      body: humanRequest({ status: "approved", can_answer: false, answered_by: ME.user.email, comment: "ok" }),
    });

    const card = await screen.findByRole("article", { name: "Pay the supplier" });
    expect(within(card).getByText("Pay 120 EUR to Initech?")).toBeInTheDocument();
    expect(within(card).getByText(/Payments/)).toBeInTheDocument();
    const data = within(card).getByTestId("request-data");
    expect(within(data).getByText("supplier")).toBeInTheDocument();
    expect(within(data).getByText("Initech")).toBeInTheDocument();
    expect(within(card).getByTestId("request-deadline")).toHaveTextContent("answer by");
    expect(within(card).getByRole("link", { name: "Open run" })).toHaveAttribute(
      "href",
      `/orgs/acme/workspaces/ws-1/runs/${RUN_ID}`,
    );
    // Data that is not a flat object is shown as JSON.
    expect(within(screen.getByRole("article", { name: "Ship the order" })).getByTestId("request-data").tagName).toBe("PRE");

    await userEvent.type(within(card).getByLabelText("Comment"), "ok");
    await userEvent.click(within(card).getByRole("button", { name: "Approve" }));

    expect(await screen.findByTestId("inbox-status")).toHaveTextContent("Approved “Pay the supplier” (Payments)");
    expect(screen.queryByRole("article", { name: "Pay the supplier" })).not.toBeInTheDocument();
    expect(screen.getByRole("article", { name: "Ship the order" })).toBeInTheDocument();
    const sent = fake.calls.find((c) => c.method === "POST");
    expect(sent?.body).toEqual({ decision: "approve", comment: "ok" });
    expect(sent?.headers.get("X-CSRFToken")).toBe("t");
  });

  it("rejects", async () => {
    const fake = open([humanRequest()], { body: humanRequest({ status: "rejected", can_answer: false }) });
    const card = await screen.findByRole("article", { name: "Pay the supplier" });
    await userEvent.click(within(card).getByRole("button", { name: "Reject" }));
    expect(await screen.findByTestId("inbox-status")).toHaveTextContent("Rejected “Pay the supplier”");
    expect(fake.calls.find((c) => c.method === "POST")?.body).toEqual({ decision: "reject", comment: "" });
    expect(screen.getByText("Nothing waiting for you")).toBeInTheDocument();
  });

  it("shows the answer that stands when someone answered first (409)", async () => {
    open([humanRequest()], {
      status: 409,
      body: {
        detail: "This request was already answered (approved by carl@example.com): your answer changed nothing.",
        code: "already_answered",
        fields: { outcome: "approved", answered_by: "carl@example.com" },
      },
    });
    const card = await screen.findByRole("article", { name: "Pay the supplier" });
    await userEvent.click(within(card).getByRole("button", { name: "Reject" }));
    expect(await within(card).findByTestId("request-standing")).toHaveTextContent("approved by carl@example.com");
    expect(within(card).queryByRole("button", { name: "Approve" })).not.toBeInTheDocument();
    expect(screen.queryByTestId("inbox-status")).not.toBeInTheDocument();
  });

  it("says why an answer was refused (403) and keeps the card", async () => {
    open([humanRequest()], {
      status: 403,
      body: { detail: "You are not among the approvers of this request.", code: "not_an_approver", fields: {} },
    });
    const card = await screen.findByRole("article", { name: "Pay the supplier" });
    await userEvent.click(within(card).getByRole("button", { name: "Approve" }));
    expect(await within(card).findByRole("alert")).toHaveTextContent("not among the approvers");
    expect(within(card).getByRole("button", { name: "Approve" })).toBeEnabled();
  });

  it("says when nothing is waiting", async () => {
    open([], { status: 500 });
    expect(await screen.findByText("Nothing waiting for you")).toBeInTheDocument();
  });
});

describe("inbox: an agent's tool call", () => {
  const KEY = "agent:tool:0:0";
  const TOOL_ANSWER = `POST /api/orgs/acme/workspaces/ws-1/runs/${RUN_ID}/requests/${encodeURIComponent(KEY)}/answer`;
  const toolCall = {
    tool: "forecast",
    description: "The weather in a city",
    arguments: { city: "Porto" },
    parameters: { type: "object", required: ["city"], properties: { city: { type: "string" } } },
    tool_call_id: "call_1",
    edited_arguments: null,
  };
  const toolRequest = (extra: Partial<HumanRequest> = {}) =>
    humanRequest({
      node_id: KEY,
      node: "agent",
      kind: "tool_call",
      title: "Run the tool 'forecast'?",
      message: "The agent wants to call 'forecast': The weather in a city",
      data: { city: "Porto" },
      tool_call: toolCall,
      ...extra,
    });

  function openTool(answer: Parameters<typeof installFakeFetch>[0][string]) {
    const fake = installFakeFetch({ "GET /api/inbox": { body: [toolRequest()] }, [TOOL_ANSWER]: answer });
    renderPage(<InboxPage />, { path: "/inbox", me: ME, role: "member" });
    return fake;
  }

  it("shows the tool and its arguments, and approves them as proposed", async () => {
    const fake = openTool({ body: toolRequest({ status: "approved", can_answer: false }) });
    const card = await screen.findByRole("article", { name: "Run the tool 'forecast'?" });
    const details = within(card).getByTestId("tool-call");
    expect(within(details).getByText("forecast")).toBeInTheDocument();
    expect(within(details).getByText(/The weather in a city/)).toBeInTheDocument();
    expect(JSON.parse(within(card).getByTestId("tool-call-arguments").textContent ?? "")).toEqual({ city: "Porto" });
    expect(within(card).queryByLabelText("Arguments (JSON)")).not.toBeInTheDocument();

    await userEvent.click(within(card).getByRole("button", { name: "Approve" }));
    expect(await screen.findByTestId("inbox-status")).toHaveTextContent("Approved “Run the tool 'forecast'?”");
    expect(fake.calls.find((c) => c.method === "POST")?.body).toEqual({ decision: "approve", comment: "" });
  });

  it("edits the arguments: bad JSON is caught before sending, the server's field errors are shown", async () => {
    let attempts = 0;
    const fake = openTool(() => {
      attempts += 1;
      if (attempts === 1) {
        return {
          status: 422,
          body: {
            detail: "The arguments do not fit the parameters of the tool 'forecast': nothing was stored; correct them and answer again.",
            code: "invalid_arguments",
            fields: { "arguments.city": "7 is not of type 'string'" },
          },
        };
      }
      return {
        body: toolRequest({
          status: "approved",
          can_answer: false,
          tool_call: { ...toolCall, edited_arguments: { city: "Braga" } },
        }),
      };
    });
    const card = await screen.findByRole("article", { name: "Run the tool 'forecast'?" });
    await userEvent.click(within(card).getByRole("button", { name: "Edit arguments" }));
    const editor = within(card).getByLabelText("Arguments (JSON)");
    expect(JSON.parse((editor as HTMLTextAreaElement).value)).toEqual({ city: "Porto" });

    // Not JSON, then not an object: said here, nothing sent.
    await userEvent.clear(editor);
    await userEvent.click(editor);
    await userEvent.paste('{"city": ');
    await userEvent.click(within(card).getByRole("button", { name: "Approve with these arguments" }));
    expect(within(card).getByTestId("argument-errors")).toHaveTextContent("not valid JSON");
    await userEvent.clear(editor);
    await userEvent.paste('["Braga"]');
    await userEvent.click(within(card).getByRole("button", { name: "Approve with these arguments" }));
    expect(within(card).getByTestId("argument-errors")).toHaveTextContent("must be a JSON object");
    expect(fake.calls.filter((c) => c.method === "POST")).toHaveLength(0);
    expect(editor).toHaveAttribute("aria-invalid", "true");

    // JSON the tool's parameters refuse: the server names the argument; the card stays.
    await userEvent.clear(editor);
    await userEvent.paste('{"city": 7}');
    await userEvent.click(within(card).getByRole("button", { name: "Approve with these arguments" }));
    expect(await within(card).findByTestId("argument-errors")).toHaveTextContent("arguments.city: 7 is not of type 'string'");
    expect(within(card).getByText(/do not fit the parameters/)).toBeInTheDocument();
    expect(screen.queryByTestId("inbox-status")).not.toBeInTheDocument();

    await userEvent.clear(editor);
    await userEvent.paste('{"city": "Braga"}');
    await userEvent.type(within(card).getByLabelText("Comment"), "Braga instead");
    await userEvent.click(within(card).getByRole("button", { name: "Approve with these arguments" }));
    expect(await screen.findByTestId("inbox-status")).toHaveTextContent("Approved");
    const sent = fake.calls.filter((c) => c.method === "POST").map((c) => c.body);
    expect(sent).toEqual([
      { decision: "approve", comment: "", arguments: { city: 7 } },
      { decision: "approve", comment: "Braga instead", arguments: { city: "Braga" } },
    ]);
  });

  it("cancels an edit, and a rejection never sends arguments", async () => {
    const fake = openTool({ body: toolRequest({ status: "rejected", can_answer: false }) });
    const card = await screen.findByRole("article", { name: "Run the tool 'forecast'?" });
    await userEvent.click(within(card).getByRole("button", { name: "Edit arguments" }));
    await userEvent.click(within(card).getByRole("button", { name: "Cancel edit" }));
    expect(within(card).queryByLabelText("Arguments (JSON)")).not.toBeInTheDocument();
    expect(within(card).getByRole("button", { name: "Approve" })).toBeInTheDocument();

    await userEvent.click(within(card).getByRole("button", { name: "Edit arguments" }));
    await userEvent.type(within(card).getByLabelText("Comment"), "not now");
    await userEvent.click(within(card).getByRole("button", { name: "Reject" }));
    expect(await screen.findByTestId("inbox-status")).toHaveTextContent("Rejected");
    expect(fake.calls.find((c) => c.method === "POST")?.body).toEqual({ decision: "reject", comment: "not now" });
  });
});

describe("inbox: an interactive card", () => {
  const surface = {
    version: "v0.9",
    catalogId: "https://a2ui.org/specification/v0_9/catalogs/basic/catalog.json",
    surfaceId: "ask",
    root: "root",
    components: [
      { id: "root", component: "Column", children: ["headline", "note", "urgent", "plan", "buttons"] },
      { id: "headline", component: "Text", text: { path: "/customer" } },
      { id: "note", component: "TextField", label: "Note", value: { path: "/note" } },
      { id: "urgent", component: "CheckBox", label: "Urgent", value: false },
      {
        id: "plan",
        component: "ChoicePicker",
        label: "Plan",
        value: { path: "/plan" },
        options: [
          { label: "Basic", value: "basic" },
          { label: "Pro", value: "pro" },
        ],
      },
      { id: "buttons", component: "Row", children: ["choose", "later"] },
      { id: "choose", component: "Button", variant: "primary", child: "choose-text", action: { event: { name: "choose" } } },
      { id: "choose-text", component: "Text", text: "Choose this plan" },
      { id: "later", component: "Button", child: "later-text", action: { event: { name: "later" } } },
      { id: "later-text", component: "Text", text: "Ask me later" },
    ],
  };
  const data = { customer: "Initech wants a plan", note: "", plan: [] };

  function cardRequest(extra: Partial<HumanRequest> = {}): HumanRequest {
    return humanRequest({
      kind: "card",
      title: "Choose a plan",
      message: "",
      data,
      card: { surface, data, action: null, values: null },
      ...extra,
    });
  }

  it("draws the card; its buttons answer with their action and the values typed", async () => {
    const fake = open([cardRequest()], ({ body }) =>
      (body as { action?: { name: string } }).action?.name === "choose" &&
      (body as { action: { values: Record<string, unknown> } }).action.values.note === "bad"
        ? {
            status: 422,
            body: {
              detail: "The answer does not fit the card 'Choose a plan': nothing was stored; correct it and answer again.",
              code: "invalid_card_answer",
              fields: { "values.note": "does not match the pattern ^[A-Z]", "values.plan": "choose at most one option" },
            },
          }
        : { body: cardRequest({ status: "approved", can_answer: false, answered_by: ME.user.email }) },
    );
    const card = await screen.findByRole("article", { name: "Choose a plan" });
    const drawn = within(card).getByTestId("a2ui-card");
    expect(within(drawn).getByText("Initech wants a plan")).toBeInTheDocument();
    expect(within(card).queryByTestId("request-data")).not.toBeInTheDocument();
    // The card's buttons approve; only Reject (with a comment) stays of the usual controls.
    expect(within(card).queryByRole("button", { name: "Approve" })).not.toBeInTheDocument();
    expect(within(card).getByRole("button", { name: "Reject" })).toBeInTheDocument();

    await userEvent.type(within(drawn).getByLabelText("Note"), "bad");
    await userEvent.click(within(drawn).getByLabelText("Urgent"));
    await userEvent.click(within(drawn).getByLabelText("Pro"));
    await userEvent.click(within(drawn).getByTestId("a2ui-choose"));

    // Refused: each message by its input; the card stays, answerable.
    expect(await within(card).findByTestId("a2ui-error-note")).toHaveTextContent("does not match the pattern ^[A-Z]");
    expect(within(drawn).getByLabelText("Note")).toHaveAttribute("aria-invalid", "true");
    expect(within(card).getByTestId("a2ui-error-plan")).toHaveTextContent("choose at most one option");
    expect(within(card).getByText(/does not fit the card/)).toBeInTheDocument();
    expect(screen.queryByTestId("inbox-status")).not.toBeInTheDocument();

    await userEvent.clear(within(drawn).getByLabelText("Note"));
    await userEvent.type(within(drawn).getByLabelText("Note"), "Call first");
    await userEvent.click(within(drawn).getByRole("button", { name: "Choose this plan" }));
    expect(await screen.findByTestId("inbox-status")).toHaveTextContent("Approved “Choose a plan”");
    expect(screen.queryByRole("article", { name: "Choose a plan" })).not.toBeInTheDocument();

    const sent = fake.calls.filter((c) => c.method === "POST").map((c) => c.body);
    expect(sent).toEqual([
      { decision: "approve", comment: "", action: { name: "choose", values: { note: "bad", urgent: true, plan: ["pro"] } } },
      { decision: "approve", comment: "", action: { name: "choose", values: { note: "Call first", urgent: true, plan: ["pro"] } } },
    ]);
  });

  it("shows an action the card does not offer as a general error", async () => {
    open([cardRequest()], {
      status: 422,
      body: {
        detail: "The answer does not fit the card.",
        code: "invalid_card_answer",
        fields: { "action.name": "the card has no button with this action; it offers: choose" },
      },
    });
    const card = await screen.findByRole("article", { name: "Choose a plan" });
    await userEvent.click(within(card).getByTestId("a2ui-later"));
    expect(await within(card).findByTestId("card-errors")).toHaveTextContent("it offers: choose");
    expect(within(card).getByTestId("a2ui-later")).toBeEnabled();
  });

  it("can still be rejected with a comment, which sends no action", async () => {
    const fake = open([cardRequest()], { body: cardRequest({ status: "rejected", can_answer: false }) });
    const card = await screen.findByRole("article", { name: "Choose a plan" });
    await userEvent.type(within(card).getByLabelText("Comment"), "not this customer");
    await userEvent.click(within(card).getByRole("button", { name: "Reject" }));
    expect(await screen.findByTestId("inbox-status")).toHaveTextContent("Rejected");
    expect(fake.calls.find((c) => c.method === "POST")?.body).toEqual({ decision: "reject", comment: "not this customer" });
  });

  it("shows an answered card read-only, with the action taken and the values", async () => {
    const fake = open(
      [
        cardRequest({
          status: "approved",
          can_answer: false,
          answered_by: "carl@example.com",
          answered_at: "2026-01-01T01:00:00Z",
          card: {
            surface,
            data,
            action: { name: "choose", surfaceId: "ask", sourceComponentId: "choose", context: {} },
            values: { note: "Call first", urgent: true, plan: ["pro"] },
          },
        }),
      ],
      { status: 500 },
    );
    const card = await screen.findByRole("article", { name: "Choose a plan" });
    const drawn = within(card).getByTestId("a2ui-card");
    expect(within(drawn).getByLabelText("Note")).toHaveValue("Call first");
    expect(within(drawn).getByLabelText("Note")).toBeDisabled();
    expect(within(drawn).getByLabelText("Urgent")).toBeChecked();
    expect(within(drawn).getByLabelText("Pro")).toBeChecked();
    expect(within(drawn).getByTestId("a2ui-choose")).toBeDisabled();
    expect(within(drawn).getByTestId("a2ui-action-taken")).toHaveTextContent("choose");
    expect(within(card).getByTestId("card-outcome")).toHaveTextContent("by carl@example.com");
    expect(within(card).queryByRole("button", { name: "Reject" })).not.toBeInTheDocument();
    expect(within(card).queryByLabelText("Comment")).not.toBeInTheDocument();
    expect(fake.calls.filter((c) => c.method === "POST")).toEqual([]);
  });

  it("a late answer shows the answer that stands, and the card read-only", async () => {
    open([cardRequest()], {
      status: 409,
      body: { detail: "Already answered: approved by carl@example.com.", code: "conflict", fields: {} },
    });
    const card = await screen.findByRole("article", { name: "Choose a plan" });
    await userEvent.click(within(card).getByTestId("a2ui-choose"));
    expect(await within(card).findByTestId("request-standing")).toHaveTextContent("approved by carl@example.com");
    expect(within(card).getByTestId("a2ui-choose")).toBeDisabled();
    expect(within(card).getByLabelText("Note")).toBeDisabled();
  });
});
