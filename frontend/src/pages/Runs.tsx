/** A workspace's runs: its flows (with "Run" for editors and owners), recent runs, and one run live. */
import { useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, call, type Flow, type Page, type Run } from "../api/client";
import { PagedTable } from "../components/DataTable";
import { useToast } from "../components/toast";
import { Alert, Badge, Button, EmptyState, PageHeader, Spinner, formatDate, relativeTime } from "../components/ui";
import { useAsync, usePaged } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { can } from "../lib/permissions";
import { A2uiCard } from "../components/A2uiCard";
import { ApprovalCard, RequestData, RequestStatusBadge, answeredText, type Decision, type HumanRequest } from "./Inbox";
import { TERMINAL, messageNode, streamUrl, useRunStream, type LiveRun, type StepState } from "../lib/runs";

const STATUS_TONE: Record<string, string> = {
  queued: "muted",
  running: "warn",
  completed: "success",
  failed: "danger",
  cancelled: "muted",
};

export function RunStatusBadge({ status, testId }: { status: string; testId?: string }) {
  return (
    <span data-testid={testId} data-status={status}>
      <Badge tone={STATUS_TONE[status]}>{status}</Badge>
    </span>
  );
}

function shortId(id: string): string {
  return id.slice(0, 8);
}

function useWorkspace(orgSlug: string, wsId: string) {
  return useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}", { params: { path: { org_slug: orgSlug, ws_id: wsId } } })),
    [orgSlug, wsId],
  );
}

export function WorkspaceRunsPage() {
  const { wsId = "" } = useParams();
  const { org, role: orgRole } = useOrg();
  const navigate = useNavigate();
  const toast = useToast();
  const path = { org_slug: org.slug, ws_id: wsId };
  const workspace = useWorkspace(org.slug, wsId);
  const flows = usePaged<Flow>(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/flows", {
          params: { path, query: { cursor: cursor ?? undefined, page_size: 50 } },
        }),
      ) as Promise<Page<Flow>>,
    [org.slug, wsId],
  );
  const runs = usePaged<Run>(
    (cursor) =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/runs", {
          params: { path, query: { cursor: cursor ?? undefined, page_size: 25 } },
        }),
      ) as Promise<Page<Run>>,
    [org.slug, wsId],
  );
  const flowNames = useMemo(() => new Map(flows.items.map((f) => [f.id, f.name])), [flows.items]);
  const [starting, setStarting] = useState<string | null>(null);

  if (workspace.loading && !workspace.data) return <Spinner />;
  if (workspace.error || !workspace.data) return <Alert>{workspace.error?.detail ?? "Workspace not found."}</Alert>;
  const ws = workspace.data;
  const mayRun = can.runFlows(orgRole, ws.role) && !ws.archived;
  const base = `/orgs/${org.slug}/workspaces/${wsId}`;

  const start = async (flow: Flow) => {
    setStarting(flow.id);
    try {
      const run = await call(() =>
        api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}/runs", {
          params: { path: { ...path, flow_id: flow.id } },
          body: { inputs: {} },
        }),
      );
      navigate(`${base}/runs/${run.id}`);
    } catch (err) {
      toast.error((err as Error).message);
      setStarting(null);
    }
  };

  return (
    <>
      <PageHeader
        breadcrumbs={
          <>
            <Link to={`/orgs/${org.slug}/workspaces`}>Workspaces</Link> / <Link to={base}>{ws.name}</Link>
          </>
        }
        title="Runs"
        description={`Flows of ${ws.name} and their recent runs.`}
      />
      <section className="card" aria-label="Flows">
        <div className="card-header">
          <div>
            <h2>Flows</h2>
            <p>{mayRun ? "Start a run with empty inputs and watch it live." : "Editors and owners can start runs."}</p>
          </div>
        </div>
        <PagedTable
          list={flows}
          columns={["Flow", "Version"]}
          actions={mayRun}
          testId="flows-table"
          empty={<EmptyState title="No flows yet" />}
          row={(flow) => (
            <tr key={flow.id} data-testid="flow-row">
              <td>{flow.name}</td>
              <td className="mono muted">{flow.current_version ? flow.current_version.slice(0, 12) : "—"}</td>
              {mayRun ? (
                <td className="actions">
                  <Button
                    size="sm"
                    variant="primary"
                    busy={starting === flow.id}
                    disabled={!flow.current_version || (starting !== null && starting !== flow.id)}
                    aria-label={`Run ${flow.name}`}
                    onClick={() => start(flow)}
                  >
                    Run
                  </Button>
                </td>
              ) : null}
            </tr>
          )}
        />
      </section>
      <section className="card" aria-label="Recent runs">
        <div className="card-header">
          <div>
            <h2>Recent runs</h2>
          </div>
          <Button size="sm" onClick={runs.reload}>
            Refresh
          </Button>
        </div>
        <PagedTable
          list={runs}
          columns={["Run", "Status", "Flow", "Started by", "Created"]}
          testId="runs-table"
          empty={<EmptyState title="No runs yet" />}
          row={(run) => (
            <tr key={run.id} data-testid="run-row">
              <td>
                <Link to={`${base}/runs/${run.id}`} aria-label={`Run ${shortId(run.id)}`}>
                  <span className="mono">{shortId(run.id)}</span>
                </Link>
              </td>
              <td>
                <RunStatusBadge status={run.status} />
              </td>
              <td>{flowNames.get(run.flow_id) ?? <span className="mono muted">{shortId(run.flow_id)}</span>}</td>
              <td>{run.caller_email ?? <span className="muted">—</span>}</td>
              <td title={formatDate(run.created_at)}>{relativeTime(run.created_at)}</td>
            </tr>
          )}
        />
      </section>
    </>
  );
}

const STEP_LABEL: Record<StepState, { icon: string; text: string }> = {
  running: { icon: "…", text: "running" },
  done: { icon: "✓", text: "done" },
  failed: { icon: "✗", text: "failed" },
};

/** What to show as the run's status: the server's once it is final, else what the stream says. */
function shownStatus(serverStatus: string | undefined, live: LiveRun): string {
  if (serverStatus && TERMINAL.includes(serverStatus)) return serverStatus;
  if (live.phase === "finished") return "completed";
  if (live.phase === "error") return "failed";
  if (live.phase === "running") return "running";
  return serverStatus ?? "queued";
}

/**
 * The run's requests to people: the pending ones (answerable here by those who may), then the
 * answered ones with who answered and how. Reloaded when the live view reports a request made
 * or resolved, and when the run ends.
 */
export function RunRequests({ orgSlug, wsId, runId, version }: { orgSlug: string; wsId: string; runId: string; version: string }) {
  const requests = useAsync(
    () =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}/requests", {
          params: { path: { org_slug: orgSlug, ws_id: wsId, run_id: runId } },
        }),
      ),
    [orgSlug, wsId, runId, version],
  );
  const [done, setDone] = useState<string | null>(null);
  const all = requests.data ?? [];
  if (all.length === 0) return null;
  const pending = all.filter((r) => r.status === "pending");
  const answered = all.filter((r) => r.status !== "pending");

  const onAnswered = (request: HumanRequest, decision: Decision) => {
    setDone(answeredText(request, decision));
    requests.reload();
  };

  return (
    <section className="card" aria-label="Waiting for approval" data-testid="run-requests">
      <div className="card-header">
        <div>
          <h2>Waiting for approval</h2>
          <p>
            {pending.length === 0
              ? "Nothing is waiting: every request of this run has its answer."
              : `${pending.length} request${pending.length === 1 ? "" : "s"} waiting for an answer.`}
          </p>
        </div>
      </div>
      <div className="card-body stack">
        {done ? (
          <div role="status" className="alert alert-success" data-testid="run-requests-status">
            <div>{done}</div>
          </div>
        ) : null}
        {pending.map((request) =>
          request.can_answer ? (
            <ApprovalCard key={request.node_id} request={request} showFlow={false} onAnswered={onAnswered} />
          ) : (
            <div key={request.node_id} className="stack" data-testid="run-request" data-status="pending">
              <div className="row">
                <strong>{request.title}</strong>
                <RequestStatusBadge status="pending" />
                <span className="muted small">
                  node <span className="mono">{request.node_id}</span>
                  {request.deadline ? ` · answer by ${formatDate(request.deadline)}` : ""}
                </span>
              </div>
              {request.message ? <p>{request.message}</p> : null}
              {request.card ? <A2uiCard card={request.card} readOnly /> : <RequestData data={request.data} />}
              <p className="muted small">You are not among the approvers of this request.</p>
            </div>
          ),
        )}
        {answered.length > 0 ? (
          <ul className="stack" aria-label="Answered requests" style={{ listStyle: "none", margin: 0, padding: 0 }}>
            {answered.map((request) => (
              <li key={request.node_id} data-testid="run-request" data-status={request.status} className="stack">
                <div className="row">
                  <strong>{request.title}</strong>
                  <RequestStatusBadge status={request.status} />
                  <span className="small">
                    {request.answered_by ? `by ${request.answered_by}` : ""}
                    {request.answered_at ? ` · ${formatDate(request.answered_at)}` : ""}
                    {request.comment ? ` · “${request.comment}”` : ""}
                  </span>
                </div>
                {request.card ? <A2uiCard card={request.card} readOnly /> : null}
              </li>
            ))}
          </ul>
        ) : null}
      </div>
    </section>
  );
}

function formatCost(usd: number): string {
  return `$${usd.toFixed(usd >= 1 ? 2 : 6)}`;
}

export function RunPage() {
  const { wsId = "", runId = "" } = useParams();
  const { org } = useOrg();
  const path = { org_slug: org.slug, ws_id: wsId, run_id: runId };
  const run = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}", { params: { path } })),
    [org.slug, wsId, runId],
  );
  const found = run.data !== undefined;
  const live = useRunStream(found ? streamUrl(org.slug, wsId, runId) : null, run.reload);
  const base = `/orgs/${org.slug}/workspaces/${wsId}`;

  if (run.loading && !run.data) return <Spinner />;
  if (run.error || !run.data) return <Alert>{run.error?.detail ?? "Run not found."}</Alert>;
  const detail = run.data;
  const status = shownStatus(detail.status, live);
  const error = live.error ?? detail.error;
  const outputs = live.outputs ?? detail.outputs;
  const tokensIn = live.usage.reduce((sum, u) => sum + u.inputTokens, 0);
  const tokensOut = live.usage.reduce((sum, u) => sum + u.outputTokens, 0);
  const cost = live.usage.reduce((sum, u) => sum + u.costUsd, 0);

  return (
    <>
      <PageHeader
        breadcrumbs={<Link to={`${base}/runs`}>Runs</Link>}
        title={
          <span className="row" style={{ gap: 10 }}>
            Run <span className="mono">{shortId(detail.id)}</span>
            <RunStatusBadge status={status} testId="run-status" />
          </span>
        }
        description={
          <>
            Started {formatDate(detail.created_at)}
            {detail.caller_email ? ` by ${detail.caller_email}` : ""} · version{" "}
            <span className="mono">{detail.flow_version.slice(0, 12)}</span>
          </>
        }
      />
      {live.connectionError ? <Alert kind="warn">{live.connectionError}</Alert> : null}
      <RunRequests
        orgSlug={org.slug}
        wsId={wsId}
        runId={runId}
        version={`${live.requestEvents}:${live.phase}`}
      />
      <section className="card" aria-label="Steps">
        <div className="card-header">
          <div>
            <h2>Steps</h2>
          </div>
        </div>
        <div className="card-body">
          {live.steps.length === 0 ? (
            <p className="muted">{live.phase === "connecting" ? "Waiting for the run…" : "No steps yet."}</p>
          ) : (
            <ul className="run-steps" aria-label="Steps">
              {live.steps.map((step) => (
                <li key={step.node} data-testid="run-step" data-node={step.node} data-state={step.state}>
                  <span className={`run-step-icon run-step-${step.state}`} aria-hidden="true">
                    {STEP_LABEL[step.state].icon}
                  </span>
                  <span className="mono">{step.node}</span>
                  <span className="muted small">{STEP_LABEL[step.state].text}</span>
                  {step.error ? <span className="small run-step-failed">{step.error}</span> : null}
                </li>
              ))}
            </ul>
          )}
        </div>
      </section>
      <section className="card" aria-label="Live output">
        <div className="card-header">
          <div>
            <h2>Live output</h2>
          </div>
        </div>
        <div className="card-body stack" role="log" aria-label="Streamed text">
          {live.messages.length === 0 ? <p className="muted">No streamed text.</p> : null}
          {live.messages.map((message) => (
            <div key={message.id}>
              {message.superseded ? (
                <p className="muted" data-testid="run-text-superseded">
                  Superseded: step {messageNode(message.id)} ran again after its worker stopped.
                </p>
              ) : null}
              <pre
                className={message.superseded ? "run-text superseded" : "run-text"}
                data-testid="run-live-text"
                data-message-id={message.id}
                aria-busy={message.open || undefined}
              >
                {message.text}
              </pre>
            </div>
          ))}
        </div>
      </section>
      {live.usage.length > 0 ? (
        <section className="card" aria-label="Usage">
          <div className="card-header">
            <div>
              <h2>Usage</h2>
              <p data-testid="run-usage-total">
                {tokensIn} input tokens · {tokensOut} output tokens · {formatCost(cost)}
              </p>
            </div>
          </div>
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th>Node</th>
                  <th>Model</th>
                  <th>Input tokens</th>
                  <th>Output tokens</th>
                  <th>Cost</th>
                </tr>
              </thead>
              <tbody>
                {live.usage.map((u, i) => (
                  <tr key={`${u.node}-${i}`}>
                    <td className="mono">{u.node}</td>
                    <td>{u.model ?? "—"}</td>
                    <td>{u.inputTokens}</td>
                    <td>{u.outputTokens}</td>
                    <td>{formatCost(u.costUsd)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ) : null}
      {error ? (
        <Alert testId="run-error">{error}</Alert>
      ) : outputs && (live.phase === "finished" || detail.status === "completed") ? (
        <section className="card" aria-label="Outputs">
          <div className="card-header">
            <div>
              <h2>Outputs</h2>
            </div>
          </div>
          <div className="card-body">
            <pre className="run-text" data-testid="run-outputs">
              {JSON.stringify(outputs, null, 2)}
            </pre>
          </div>
        </section>
      ) : null}
    </>
  );
}
