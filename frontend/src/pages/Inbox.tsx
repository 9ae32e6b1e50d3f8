/**
 * Inbox: the approvals the signed-in user may answer, across their organisations. Each card
 * shows what the flow asks and the data it shows, and takes an answer (approve or reject, with
 * a comment). The first answer wins: a late one shows the answer that stands.
 */
import { useId, useState } from "react";
import { Link } from "react-router";
import { ApiError, api, call, type Schemas } from "../api/client";
import { Alert, Badge, Button, EmptyState, PageHeader, Spinner, formatDate, relativeTime } from "../components/ui";
import { useAsync } from "../lib/hooks";

export type HumanRequest = Schemas["HumanRequestOut"];
export type Decision = Schemas["AnswerIn"]["decision"];

const OUTCOME_TEXT: Record<string, string> = {
  approved: "approved",
  rejected: "rejected",
  timed_out: "timed out",
  expired: "expired",
  pending: "pending",
};

const OUTCOME_TONE: Record<string, string> = {
  approved: "success",
  rejected: "danger",
  timed_out: "muted",
  expired: "muted",
  pending: "warn",
};

export function RequestStatusBadge({ status }: { status: string }) {
  return <Badge tone={OUTCOME_TONE[status]}>{OUTCOME_TEXT[status] ?? status}</Badge>;
}

export function runPath(request: Pick<HumanRequest, "org_slug" | "workspace_id" | "run_id">): string {
  return `/orgs/${request.org_slug}/workspaces/${request.workspace_id}/runs/${request.run_id}`;
}

/** Answer a request; resolves with the answered request, rejects with an ApiError. */
export function answerRequest(request: HumanRequest, decision: Decision, comment: string): Promise<HumanRequest> {
  return call(() =>
    api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}/requests/{node_id}/answer", {
      params: {
        path: {
          org_slug: request.org_slug,
          ws_id: request.workspace_id,
          run_id: request.run_id,
          node_id: request.node_id,
        },
      },
      body: { decision, comment },
    }),
  );
}

/** A 409 says which answer stands (or that the deadline passed) in its detail. */
export function standingAnswer(err: ApiError): string {
  return err.detail;
}

/** What a successful answer did, for the status line. */
export function answeredText(request: HumanRequest, decision: Decision): string {
  return `${decision === "approve" ? "Approved" : "Rejected"} “${request.title}” (${request.flow_name}); the run continues.`;
}

function isScalar(value: unknown): boolean {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

/** The data a request shows: a key/value table for a flat object, else formatted JSON. */
export function RequestData({ data }: { data: unknown }) {
  if (data === undefined || data === null || data === "") return null;
  if (typeof data === "object" && !Array.isArray(data) && Object.values(data).every(isScalar)) {
    const entries = Object.entries(data as Record<string, unknown>);
    if (entries.length === 0) return null;
    return (
      <table className="table" data-testid="request-data">
        <tbody>
          {entries.map(([key, value]) => (
            <tr key={key}>
              <th scope="row" className="mono">
                {key}
              </th>
              <td>{String(value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    );
  }
  return (
    <pre className="run-text" data-testid="request-data">
      {typeof data === "string" ? data : JSON.stringify(data, null, 2)}
    </pre>
  );
}

/**
 * A pending request with its answer form. `onAnswered` gets the answered request (or, after a
 * 409, null with the standing answer already shown here) so the caller can drop or refresh it.
 */
export function ApprovalCard({
  request,
  showFlow = true,
  onAnswered,
}: {
  request: HumanRequest;
  showFlow?: boolean;
  onAnswered: (request: HumanRequest, decision: Decision) => void;
}) {
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState<Decision | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [standing, setStanding] = useState<string | null>(null);
  const commentId = useId();

  const answer = async (decision: Decision) => {
    setBusy(decision);
    setError(null);
    try {
      const answered = await answerRequest(request, decision, comment);
      onAnswered(answered, decision);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) setStanding(standingAnswer(err));
      else setError((err as Error).message);
      setBusy(null);
    }
  };

  return (
    <article
      className="card"
      aria-label={request.title}
      data-testid="approval-card"
      data-run={request.run_id}
      data-node={request.node_id}
    >
      <div className="card-header">
        <div>
          <h3>{request.title}</h3>
          <p className="muted small">
            {showFlow ? (
              <>
                {request.flow_name} · node <span className="mono">{request.node_id}</span> ·{" "}
              </>
            ) : (
              <>
                Node <span className="mono">{request.node_id}</span> ·{" "}
              </>
            )}
            <span title={formatDate(request.created_at)}>asked {relativeTime(request.created_at)}</span>
            {request.deadline ? (
              <span data-testid="request-deadline"> · answer by {formatDate(request.deadline)}</span>
            ) : null}
          </p>
        </div>
        {showFlow ? (
          <Link to={runPath(request)} className="small">
            Open run
          </Link>
        ) : null}
      </div>
      <div className="card-body stack">
        {request.message ? <p data-testid="request-message">{request.message}</p> : null}
        <RequestData data={request.data} />
        {standing ? (
          <Alert kind="warn" testId="request-standing">
            {standing}
          </Alert>
        ) : (
          <>
            <div className="field">
              <label htmlFor={commentId}>Comment</label>
              <textarea
                id={commentId}
                className="input"
                rows={2}
                value={comment}
                onChange={(event) => setComment(event.target.value)}
                placeholder="Optional: why, or what to do next"
              />
            </div>
            {error ? <Alert>{error}</Alert> : null}
            <div className="row">
              <Button
                variant="primary"
                busy={busy === "approve"}
                disabled={busy !== null}
                onClick={() => answer("approve")}
              >
                Approve
              </Button>
              <Button variant="danger" busy={busy === "reject"} disabled={busy !== null} onClick={() => answer("reject")}>
                Reject
              </Button>
            </div>
          </>
        )}
      </div>
    </article>
  );
}

export function InboxPage() {
  const inbox = useAsync(() => call(() => api.GET("/api/inbox")), []);
  const [done, setDone] = useState<string | null>(null);

  const onAnswered = (answered: HumanRequest, decision: Decision) => {
    inbox.setData((items) =>
      items?.filter((i) => !(i.run_id === answered.run_id && i.node_id === answered.node_id)),
    );
    setDone(answeredText(answered, decision));
  };

  const items = inbox.data ?? [];
  return (
    <>
      <PageHeader
        title="Inbox"
        description="Approvals waiting for you, in every organisation you belong to. The first answer counts."
      />
      {done ? (
        <div role="status" className="alert alert-success" data-testid="inbox-status">
          <div>{done}</div>
        </div>
      ) : null}
      {inbox.loading && !inbox.data ? <Spinner /> : null}
      {inbox.error ? <Alert>{inbox.error.detail}</Alert> : null}
      {inbox.data && items.length === 0 ? (
        <div className="card">
          <EmptyState title="Nothing waiting for you">Requests to approve will appear here.</EmptyState>
        </div>
      ) : null}
      {items.map((request) => (
        <ApprovalCard key={`${request.run_id}:${request.node_id}`} request={request} onAnswered={onAnswered} />
      ))}
      {inbox.data ? (
        <div className="row">
          <Button size="sm" onClick={inbox.reload}>
            Refresh
          </Button>
        </div>
      ) : null}
    </>
  );
}
