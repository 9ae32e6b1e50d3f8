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
