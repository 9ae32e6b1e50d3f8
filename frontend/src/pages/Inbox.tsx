/**
 * Inbox: the approvals the signed-in user may answer, across their organisations. Each card
 * shows what the flow asks and the data it shows, and takes an answer (approve or reject, with
 * a comment). An agent's tool call shows the tool and its proposed arguments, which may also be
 * edited before approving (checked here as JSON, then by the server against the tool's
 * parameters). An interactive card (kind `card`) is drawn (components/A2uiCard.tsx) and
 * approved by one of its own buttons, with the values of its inputs; it may still be rejected
 * with a comment, and once answered it is shown read-only with the action taken. The first
 * answer wins: a late one shows the answer that stands.
 */
import { useId, useState } from "react";
import { Link } from "react-router";
import { ApiError, api, call, type Schemas } from "../api/client";
import { A2uiCard, type CardAction } from "../components/A2uiCard";
import { Alert, Badge, Button, EmptyState, PageHeader, Spinner, formatDate, relativeTime } from "../components/ui";
import { useAsync } from "../lib/hooks";

export type HumanRequest = Schemas["HumanRequestOut"];
export type Decision = Schemas["AnswerIn"]["decision"];
export type ToolArguments = NonNullable<Schemas["AnswerIn"]["arguments"]>;
export type CardAnswer = Schemas["CardActionIn"];

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

/**
 * Answer a request; resolves with the answered request, rejects with an ApiError. `args`: a tool
 * call's edited arguments (only with approve); `action`: a card's action and input values (only
 * with approve).
 */
export function answerRequest(
  request: HumanRequest,
  decision: Decision,
  comment: string,
  args?: ToolArguments,
  action?: CardAnswer,
): Promise<HumanRequest> {
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
      body:
        action !== undefined
          ? { decision, comment, action }
          : args === undefined
            ? { decision, comment }
            : { decision, comment, arguments: args },
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

/**
 * The text of an arguments editor as an object, or why it is not one (nothing is sent then).
 */
export function parseArguments(text: string): { value: ToolArguments } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `The arguments are not valid JSON: ${(err as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { error: "The arguments must be a JSON object, like {\"city\": \"Paris\"}." };
  }
  return { value: value as ToolArguments };
}

/** The tool an agent wants to call, and the arguments it proposes (or that were approved). */
export function ToolCallDetails({ toolCall }: { toolCall: NonNullable<HumanRequest["tool_call"]> }) {
  const edited = toolCall.edited_arguments;
  return (
    <div className="stack" data-testid="tool-call">
      <p>
        Tool <strong className="mono">{toolCall.tool}</strong>
        {toolCall.description ? <span className="muted"> · {toolCall.description}</span> : null}
      </p>
      <div>
        <span className="muted small">{edited ? "Proposed arguments" : "Arguments"}</span>
        <pre className="run-text" data-testid="tool-call-arguments">
          {JSON.stringify(toolCall.arguments, null, 2)}
        </pre>
      </div>
      {edited ? (
        <div>
          <span className="muted small">Approved with these arguments</span>
          <pre className="run-text" data-testid="tool-call-edited">
            {JSON.stringify(edited, null, 2)}
          </pre>
        </div>
      ) : null}
    </div>
  );
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

/** A 422's fields for a card answer: messages by input component id, and the rest. */
export function cardAnswerErrors(fields: Record<string, string>): { byInput: Record<string, string>; other: string[] } {
  const byInput: Record<string, string> = {};
  const other: string[] = [];
  for (const [field, message] of Object.entries(fields)) {
    if (field.startsWith("values.")) byInput[field.slice("values.".length)] = message;
    else if (field === "action.name") other.push(message);
    else other.push(`${field}: ${message}`);
  }
  return { byInput, other };
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
  // A tool call's arguments being edited (null: approve as proposed), and what is wrong with them.
  const [editing, setEditing] = useState<string | null>(null);
  const [argumentErrors, setArgumentErrors] = useState<string[]>([]);
  const commentId = useId();
  const argumentsId = useId();
  const toolCall = request.kind === "tool_call" ? request.tool_call : null;
  // An interactive card is approved by one of its own buttons (an A2UI action); once answered
  // (here or elsewhere) it stays on show, read-only, with the action taken.
  const [answered, setAnswered] = useState<HumanRequest | null>(null);
  const [cardErrors, setCardErrors] = useState<Record<string, string>>({});
  const shown = answered ?? request;
  const card = request.kind === "card" ? (shown.card ?? null) : null;

  const answer = async (decision: Decision) => {
    let args: ToolArguments | undefined;
    if (decision === "approve" && editing !== null) {
      const parsed = parseArguments(editing);
      if ("error" in parsed) {
        setArgumentErrors([parsed.error]);
        return;
      }
      args = parsed.value;
    }
    setBusy(decision);
    setError(null);
    setArgumentErrors([]);
    try {
      const answered = await answerRequest(request, decision, comment, args);
      onAnswered(answered, decision);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) setStanding(standingAnswer(err));
      else if (err instanceof ApiError && err.status === 422 && Object.keys(err.fields).length > 0) {
        setError(err.detail);
        setArgumentErrors(Object.entries(err.fields).map(([field, message]) => `${field}: ${message}`));
      } else setError((err as Error).message);
      setBusy(null);
    }
  };

  const answerCard = async (action: CardAction) => {
    setBusy("approve");
    setError(null);
    setArgumentErrors([]);
    setCardErrors({});
    try {
      const result = await answerRequest(request, "approve", comment, undefined, action);
      setAnswered(result);
      setBusy(null);
      onAnswered(result, "approve");
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) setStanding(standingAnswer(err));
      else if (err instanceof ApiError && err.status === 422 && Object.keys(err.fields).length > 0) {
        const { byInput, other } = cardAnswerErrors(err.fields);
        setError(err.detail);
        setCardErrors(byInput);
        setArgumentErrors(other);
      } else setError((err as Error).message);
      setBusy(null);
    }
  };

  const startEditing = () => {
    setEditing(JSON.stringify(toolCall?.arguments ?? {}, null, 2));
    setArgumentErrors([]);
  };
  const stopEditing = () => {
    setEditing(null);
    setArgumentErrors([]);
    setError(null);
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
        {toolCall ? (
          <ToolCallDetails toolCall={toolCall} />
        ) : request.kind === "card" && card ? null : (
          <RequestData data={request.data} />
        )}
        {request.kind === "card" ? (
          <CardAnswerForm
            request={shown}
            card={card}
            readOnly={shown.status !== "pending" || !shown.can_answer || standing !== null || answered !== null}
            busy={busy}
            standing={standing}
            error={error}
            otherErrors={argumentErrors}
            cardErrors={cardErrors}
            comment={comment}
            commentId={commentId}
            onComment={setComment}
            onAction={answerCard}
            onReject={() => answer("reject")}
          />
        ) : standing ? (
          <Alert kind="warn" testId="request-standing">
            {standing}
          </Alert>
        ) : (
          <>
            {toolCall && editing !== null ? (
              <div className="field">
                <label htmlFor={argumentsId}>Arguments (JSON)</label>
                <textarea
                  id={argumentsId}
                  className="input mono"
                  rows={Math.min(12, editing.split("\n").length + 1)}
                  value={editing}
                  aria-invalid={argumentErrors.length > 0 ? true : undefined}
                  aria-describedby={argumentErrors.length > 0 ? `${argumentsId}-errors` : undefined}
                  onChange={(event) => setEditing(event.target.value)}
                />
                {argumentErrors.length > 0 ? (
                  <ul className="error" id={`${argumentsId}-errors`} role="alert" data-testid="argument-errors">
                    {argumentErrors.map((message) => (
                      <li key={message}>{message}</li>
                    ))}
                  </ul>
                ) : null}
              </div>
            ) : null}
            <CommentField id={commentId} value={comment} onChange={setComment} />
            {error ? <Alert>{error}</Alert> : null}
            <div className="row">
              <Button
                variant="primary"
                busy={busy === "approve"}
                disabled={busy !== null}
                onClick={() => answer("approve")}
              >
                {editing !== null ? "Approve with these arguments" : "Approve"}
              </Button>
              {toolCall ? (
                editing === null ? (
                  <Button disabled={busy !== null} onClick={startEditing}>
                    Edit arguments
                  </Button>
                ) : (
                  <Button disabled={busy !== null} onClick={stopEditing}>
                    Cancel edit
                  </Button>
                )
              ) : null}
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

/** The answer's optional comment. */
function CommentField({ id, value, onChange }: { id: string; value: string; onChange: (comment: string) => void }) {
  return (
    <div className="field">
      <label htmlFor={id}>Comment</label>
      <textarea
        id={id}
        className="input"
        rows={2}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        placeholder="Optional: why, or what to do next"
      />
    </div>
  );
}

/**
 * A card's answer form: the card itself (its buttons approve it with their action), the
 * server's complaints, the comment and Reject; read-only with its outcome once answered.
 */
function CardAnswerForm({
  request,
  card,
  readOnly,
  busy,
  standing,
  error,
  otherErrors,
  cardErrors,
  comment,
  commentId,
  onComment,
  onAction,
  onReject,
}: {
  request: HumanRequest;
  card: HumanRequest["card"] | null;
  readOnly: boolean;
  busy: Decision | null;
  standing: string | null;
  error: string | null;
  otherErrors: string[];
  cardErrors: Record<string, string>;
  comment: string;
  commentId: string;
  onComment: (comment: string) => void;
  onAction: (action: CardAction) => void;
  onReject: () => void;
}) {
  return (
    <>
      {card ? (
        <A2uiCard card={card} readOnly={readOnly} busy={busy !== null} errors={cardErrors} onAction={onAction} />
      ) : (
        <Alert kind="warn" testId="card-missing">
          This request is an interactive card, but its card did not come with it. Refresh to try again.
        </Alert>
      )}
      {standing ? (
        <Alert kind="warn" testId="request-standing">
          {standing}
        </Alert>
      ) : null}
      {request.status !== "pending" ? (
        <p className="row small" data-testid="card-outcome">
          <RequestStatusBadge status={request.status} />
          {request.answered_by ? <span>by {request.answered_by}</span> : null}
          {request.answered_at ? <span className="muted">{formatDate(request.answered_at)}</span> : null}
          {request.comment ? <span>“{request.comment}”</span> : null}
        </p>
      ) : null}
      {error ? <Alert>{error}</Alert> : null}
      {otherErrors.length > 0 ? (
        <ul className="a2ui-errors" role="alert" data-testid="card-errors">
          {otherErrors.map((message) => (
            <li key={message}>{message}</li>
          ))}
        </ul>
      ) : null}
      {!readOnly ? (
        <>
          <CommentField id={commentId} value={comment} onChange={onComment} />
          <div className="row">
            <span className="muted small grow">Answer with one of the card&apos;s buttons, or reject it.</span>
            <Button variant="danger" busy={busy === "reject"} disabled={busy !== null} onClick={onReject}>
              Reject
            </Button>
          </div>
        </>
      ) : null}
    </>
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
