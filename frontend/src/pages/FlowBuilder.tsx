/**
 * The visual flow builder: a flow's document on a canvas (React Flow), edited by dragging nodes
 * from the palette and connecting typed ports, checked by the server as it changes, saved as
 * versions, and run with the run's progress drawn over the nodes. Viewers see it read-only.
 */
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type FinalConnectionState,
  type NodeChange,
  type NodeTypes,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useCallback, useContext, useEffect, useMemo, useRef, useState, type DragEvent, type ReactNode } from "react";
import {
  Link,
  UNSAFE_DataRouterContext,
  useBlocker,
  useNavigate,
  useParams,
  useSearchParams,
} from "react-router";
import { ApiError, api, call, type Schemas } from "../api/client";
import { useToast } from "../components/toast";
import { Alert, Badge, Button, ConfirmDialog, PageHeader, Spinner } from "../components/ui";
import { useAsync } from "../lib/hooks";
import { useOrg } from "../lib/org";
import { can } from "../lib/permissions";
import { TERMINAL, streamUrl, useRunStream } from "../lib/runs";
import {
  initialConfig,
  toCatalogue,
  toResolvedPorts,
  type Catalogue,
  type NodeTypesResponse,
  type ResolvedPorts,
} from "../builder/catalogue";
import { copyNodes, pasteClip, type Clip } from "../builder/clipboard";
import { secretChoices } from "../builder/configSchema";
import { connectionProblem } from "../builder/connections";
import {
  asDocument,
  edgeId,
  sameDocument,
  toCanvas,
  toDocument,
  uniqueNodeId,
  type FlowDocument,
  type FlowNode,
} from "../builder/document";
import { historyPush, historyRedo, historyStart, historyUndo, type History } from "../builder/history";
import { autoLayout } from "../builder/layout";
import {
  nodeRunDetail,
  overlayStates,
  statesFromEvents,
  streamedText,
  type RunEvent,
} from "../builder/runview";
import { CanvasContext, FlowNodeView, type CanvasInfo, type Issue } from "./FlowBuilderNode";
import {
  NODE_MIME,
  NodeInspector,
  NodeRunPanel,
  Palette,
  PortLegend,
  ProblemsList,
  RunDialog,
  SaveDialog,
  ShortcutsHelp,
  VersionsPanel,
  type SecretChoice,
} from "./FlowBuilderPanels";
import { RunRequests, RunStatusBadge } from "./Runs";

const NODE_TYPES: NodeTypes = { flow: FlowNodeView };
const VALIDATE_DELAY_MS = 400;
/** Copied nodes, kept for the session: paste works across flows of the console. */
let clipboard: Clip | null = null;

type FlowDetail = Schemas["FlowDetailOut"];

export function FlowBuilderPage() {
  const { wsId = "", flowId = "" } = useParams();
  const [params] = useSearchParams();
  const { org, role: orgRole } = useOrg();
  const versionParam = params.get("version");
  const path = { org_slug: org.slug, ws_id: wsId };
  const workspace = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}", { params: { path } })),
    [org.slug, wsId],
  );
  const flow = useAsync(
    () => call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}", { params: { path: { ...path, flow_id: flowId } } })),
    [org.slug, wsId, flowId],
  );
  const version = useAsync(
    () =>
      versionParam
        ? call(() =>
            api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}/versions/{version_hash}", {
              params: { path: { ...path, flow_id: flowId, version_hash: versionParam } },
            }),
          )
        : Promise.resolve(null),
    [org.slug, wsId, flowId, versionParam],
  );
  const nodeTypes = useAsync(async () => {
    const data = await call(() => api.GET("/api/node-types"));
    return toCatalogue(data as NodeTypesResponse);
  }, []);

  const failed = workspace.error ?? flow.error ?? version.error ?? nodeTypes.error;
  if (failed) {
    return (
      <Alert>
        {failed.status === 404
          ? "This flow (or version) does not exist, or you have no access to it."
          : `${failed.detail} Reload the page to try again.`}
      </Alert>
    );
  }
  if (!workspace.data || !flow.data || version.loading || !nodeTypes.data) return <Spinner label="Loading the flow" />;
  const ws = workspace.data;
  const detail = flow.data;
  const old = version.data && version.data.hash !== detail.current_version ? version.data : null;
  const mayEdit = can.runFlows(orgRole, ws.role) && !ws.archived; // editing flows takes the role that runs them
  const document = asDocument(old ? old.document : detail.document);
  const loadedHash = old ? old.hash : detail.current_version;
  return (
    <ReactFlowProvider>
      <Builder
        // A new version loaded (a save elsewhere, another version opened) starts a fresh editor.
        key={`${flowId}:${loadedHash ?? "new"}`}
        flow={detail}
        wsName={ws.name}
        catalogue={nodeTypes.data}
        initial={document}
        loadedHash={loadedHash}
        oldVersion={old ? old.hash : null}
        mayEdit={mayEdit && !old}
        mayRun={mayEdit}
      />
    </ReactFlowProvider>
  );
}

/** Leaving with unsaved edits asks first: closing the tab (beforeunload) and in-app navigation. */
function useUnsavedGuard(dirty: boolean) {
  useEffect(() => {
    if (!dirty) return;
    const onBeforeUnload = (event: BeforeUnloadEvent) => {
      event.preventDefault();
      event.returnValue = "";
    };
    window.addEventListener("beforeunload", onBeforeUnload);
    return () => window.removeEventListener("beforeunload", onBeforeUnload);
  }, [dirty]);
}

const LEAVE_TITLE = "Leave without saving?";
const LEAVE_TEXT = "Your changes to this flow are not saved as a version yet; leaving discards them.";

/** react-router's blocker: only under a data router (createBrowserRouter), where it exists. */
function RouterBlocker({ dirty }: { dirty: boolean }) {
  const blocker = useBlocker(({ currentLocation, nextLocation }) => dirty && currentLocation.pathname !== nextLocation.pathname);
  if (blocker.state !== "blocked") return null;
  return (
    <ConfirmDialog
      title={LEAVE_TITLE}
      description={LEAVE_TEXT}
      confirmLabel="Leave"
      onConfirm={async () => blocker.proceed()}
      onClose={() => blocker.state === "blocked" && blocker.reset()}
    />
  );
}

/**
 * Outside a data router (the console runs under one; a plain <MemoryRouter> has no
 * useBlocker), links are intercepted instead: a click on an in-app link leaving the page
 * asks first.
 */
function LinkBlocker({ dirty }: { dirty: boolean }) {
  const navigate = useNavigate();
  const [pending, setPending] = useState<string | null>(null);
  useEffect(() => {
    if (!dirty) return;
    const onClick = (event: MouseEvent) => {
      if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      const anchor = (event.target as Element | null)?.closest?.("a[href]") as HTMLAnchorElement | null;
      if (!anchor || anchor.target === "_blank") return;
      const url = new URL(anchor.href, window.location.href);
      if (url.origin !== window.location.origin || url.pathname === window.location.pathname) return;
      event.preventDefault();
      event.stopPropagation();
      setPending(url.pathname + url.search + url.hash);
    };
    document.addEventListener("click", onClick, true);
    return () => document.removeEventListener("click", onClick, true);
  }, [dirty]);
  if (!pending) return null;
  return (
    <ConfirmDialog
      title={LEAVE_TITLE}
      description={LEAVE_TEXT}
      confirmLabel="Leave"
      onConfirm={async () => navigate(pending.replace(/^\/static(?=\/)/, ""))}
      onClose={() => setPending(null)}
    />
  );
}

function UnsavedGuard({ dirty }: { dirty: boolean }) {
  useUnsavedGuard(dirty);
  const dataRouter = useContext(UNSAFE_DataRouterContext);
  return dataRouter ? <RouterBlocker dirty={dirty} /> : <LinkBlocker dirty={dirty} />;
}

function isTyping(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  if (!element?.tagName) return false;
  return ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName) || element.isContentEditable;
}

interface BuilderProps {
  flow: FlowDetail;
  wsName: string;
  catalogue: Catalogue;
  initial: FlowDocument;
  loadedHash: string | null;
  oldVersion: string | null;
  mayEdit: boolean;
  mayRun: boolean;
}

function Builder({ flow, wsName, catalogue, initial, loadedHash, oldVersion, mayEdit, mayRun }: BuilderProps) {
  const { wsId = "" } = useParams();
  const { org } = useOrg();
  const toast = useToast();
  const [params, setParams] = useSearchParams();
  const runId = params.get("run");
  const readOnly = !mayEdit;
  const base = `/orgs/${org.slug}/workspaces/${wsId}`;
  const path = { org_slug: org.slug, ws_id: wsId };
  const { screenToFlowPosition, fitView, setCenter, getNodes } = useReactFlow<FlowNode, Edge>();
  const wrapper = useRef<HTMLDivElement>(null);

  const start = useMemo(() => toCanvas(initial), [initial]);
  const [nodes, setNodes] = useState<FlowNode[]>(start.nodes);
  const [edges, setEdges] = useState<Edge[]>(start.edges);
  const [history, setHistory] = useState<History<FlowDocument>>(() => historyStart(toDocument(start.nodes, start.edges, initial.settings)));
  const [saved, setSaved] = useState<FlowDocument>(() => toDocument(start.nodes, start.edges, initial.settings));
  const pendingGroup = useRef<string | null>(null);
  const settings = initial.settings;

  const doc = history.present;
  const dirty = !readOnly && !sameDocument(doc, saved);

  // Every committed change of the canvas becomes an undo step; positions only once a drag ends.
  useEffect(() => {
    if (nodes.some((n) => n.dragging)) return;
    const group = pendingGroup.current;
    pendingGroup.current = null;
    setHistory((h) => historyPush(h, toDocument(nodes, edges, settings), group));
  }, [nodes, edges, settings]);

  const restore = useCallback((next: History<FlowDocument>) => {
    const canvas = toCanvas(next.present);
    const selected = new Set(getNodes().filter((n) => n.selected).map((n) => n.id));
    setNodes(canvas.nodes.map((n) => ({ ...n, selected: selected.has(n.id) })));
    setEdges(canvas.edges);
    setHistory(next);
  }, [getNodes]);
  const undo = useCallback(() => restore(historyUndo(history)), [history, restore]);
  const redo = useCallback(() => restore(historyRedo(history)), [history, restore]);

  // --- server validation, debounced --------------------------------------------------------
  const [issues, setIssues] = useState<Issue[]>([]);
  // The ports the server resolved from each node's config: the handles drawn. A node whose
  // config is invalid for a moment (while typing) keeps the ports it last had.
  const [resolvedPorts, setResolvedPorts] = useState<ResolvedPorts>(() => new Map());
  const [checking, setChecking] = useState(false);
  const [validateError, setValidateError] = useState<string | null>(null);
  const documentKey = JSON.stringify(doc);
  useEffect(() => {
    let stale = false;
    setChecking(true);
    const timer = window.setTimeout(async () => {
      try {
        const result = await call(() =>
          api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/flows/validate", { params: { path }, body: { document: doc } }),
        );
        if (stale) return;
        setIssues(result.issues);
        setResolvedPorts((previous) => {
          const next = toResolvedPorts(result.ports);
          for (const node of doc.nodes) {
            const kept = previous.get(node.id);
            if (kept && !next.has(node.id)) next.set(node.id, kept);
          }
          return next;
        });
        setValidateError(null);
      } catch (err) {
        if (!stale) setValidateError(`The flow could not be checked: ${(err as Error).message}`);
      } finally {
        if (!stale) setChecking(false);
      }
    }, VALIDATE_DELAY_MS);
    return () => {
      stale = true;
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [documentKey, org.slug, wsId]);
  const issuesByNode = useMemo(() => {
    const map = new Map<string, Issue[]>();
    for (const issue of issues) if (issue.node) map.set(issue.node, [...(map.get(issue.node) ?? []), issue]);
    return map;
  }, [issues]);
  const hasErrors = issues.some((i) => i.severity === "error");

  // --- secrets for the config forms: names only -------------------------------------------
  const secrets = useAsync(async (): Promise<SecretChoice[]> => {
    if (readOnly) return [];
    const [own, shared] = await Promise.all([
      call(() => api.GET("/api/orgs/{org_slug}/secrets", { params: { path: { org_slug: org.slug } } })).catch(() => []),
      call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/secrets", { params: { path } })).catch(() => []),
    ]);
    return secretChoices(own.map((s) => s.name), shared.map((s) => s.name));
  }, [org.slug, wsId, readOnly]);

  // --- editing ------------------------------------------------------------------------------
  const [refusal, setRefusal] = useState<CanvasInfo["refusal"]>(null);
  const [selectedId, setSelectedId] = useState<string | null>(null);

  const addNode = useCallback(
    (type: string, position?: { x: number; y: number }) => {
      const spec = catalogue.types.get(type);
      if (!spec || readOnly) return;
      const taken = new Set(getNodes().map((n) => n.id));
      const id = uniqueNodeId(type, taken);
      let at = position;
      if (!at) {
        const box = wrapper.current?.getBoundingClientRect();
        const centre = box ? { x: box.left + box.width / 2, y: box.top + box.height / 2 } : { x: 0, y: 0 };
        at = screenToFlowPosition(centre);
        at = { x: at.x - 110 + (taken.size % 5) * 24, y: at.y - 40 + (taken.size % 5) * 24 };
      }
      const node: FlowNode = {
        id,
        type: "flow",
        position: at,
        selected: true,
        data: { nodeType: type, config: initialConfig(spec, catalogue.models, id) },
      };
      // Settings typed right after adding belong to the same undo step as the node.
      pendingGroup.current = `config:${id}`;
      setNodes((all) => [...all.map((n) => ({ ...n, selected: false })), node]);
      setSelectedId(id);
    },
    [catalogue, readOnly, getNodes, screenToFlowPosition],
  );

  const onDragOver = useCallback((event: DragEvent) => {
    if (!event.dataTransfer.types.includes(NODE_MIME)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
  }, []);
  const onDrop = useCallback(
    (event: DragEvent) => {
      const type = event.dataTransfer.getData(NODE_MIME);
      if (!type) return;
      event.preventDefault();
      addNode(type, screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [addNode, screenToFlowPosition],
  );

  const onNodesChange = useCallback(
    (changes: NodeChange<FlowNode>[]) => {
      const allowed = readOnly ? changes.filter((c) => c.type === "select" || c.type === "dimensions") : changes;
      setNodes((all) => applyNodeChanges(allowed, all));
      for (const change of changes) {
        if (change.type === "select" && change.selected) setSelectedId(change.id);
        if (change.type === "remove") setSelectedId((current) => (current === change.id ? null : current));
      }
    },
    [readOnly],
  );
  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      const allowed = readOnly ? changes.filter((c) => c.type === "select") : changes;
      setEdges((all) => applyEdgeChanges(allowed, all));
    },
    [readOnly],
  );

  const isValidConnection = useCallback(
    (connection: Connection | Edge) => connectionProblem(connection, getNodes(), edges, catalogue, resolvedPorts) === null,
    [edges, catalogue, getNodes, resolvedPorts],
  );
  const onConnect = useCallback(
    (connection: Connection) => {
      if (readOnly || connectionProblem(connection, getNodes(), edges, catalogue, resolvedPorts) !== null) return;
      const from = `${connection.source}.${connection.sourceHandle ?? ""}`;
      const to = `${connection.target}.${connection.targetHandle ?? ""}`;
      setEdges((all) => [...all, { ...connection, id: edgeId(from, to) }]);
      setRefusal(null);
    },
    [readOnly, edges, catalogue, getNodes, resolvedPorts],
  );
  // A refused connection (dropped on a port that does not take it) says why, at the node.
  const onConnectEnd = useCallback(
    (_event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (readOnly || !state.fromHandle || !state.toHandle || state.isValid) return;
      const fromIsSource = state.fromHandle.type === "source";
      const source = fromIsSource ? state.fromHandle : state.toHandle;
      const target = fromIsSource ? state.toHandle : state.fromHandle;
      const attempt = { source: source.nodeId, sourceHandle: source.id, target: target.nodeId, targetHandle: target.id };
      const message = connectionProblem(attempt, getNodes(), edges, catalogue, resolvedPorts);
      if (message) setRefusal({ node: target.nodeId, port: target.id ?? null, message });
    },
    [readOnly, edges, catalogue, getNodes, resolvedPorts],
  );
  useEffect(() => {
    if (!refusal) return;
    const timer = window.setTimeout(() => setRefusal(null), 8000);
    return () => window.clearTimeout(timer);
  }, [refusal]);

  const setConfig = useCallback(
    (nodeId: string, config: Record<string, unknown>) => {
      if (readOnly) return;
      const current = getNodes().find((n) => n.id === nodeId);
      if (!current || JSON.stringify(current.data.config) === JSON.stringify(config)) return;
      pendingGroup.current = `config:${nodeId}`;
      setNodes((all) => all.map((n) => (n.id === nodeId ? { ...n, data: { ...n.data, config } } : n)));
      // Ports may have changed (an input's fields): edges to ports that are gone stay, and the
      // server's validation names them, so nothing is lost silently.
    },
    [readOnly, getNodes],
  );

  const copy = useCallback(() => {
    const selected = new Set(getNodes().filter((n) => n.selected).map((n) => n.id));
    if (selected.size === 0) return;
    clipboard = copyNodes(doc, selected);
    toast.success(`Copied ${selected.size} node${selected.size === 1 ? "" : "s"}.`);
  }, [getNodes, doc, toast]);
  const paste = useCallback(() => {
    if (!clipboard || readOnly) return;
    const pasted = pasteClip(clipboard, new Set(getNodes().map((n) => n.id)));
    const canvas = toCanvas({ schema: 1, nodes: pasted.nodes, edges: pasted.edges });
    setNodes((all) => [...all.map((n) => ({ ...n, selected: false })), ...canvas.nodes.map((n) => ({ ...n, selected: true }))]);
    setEdges((all) => [...all, ...canvas.edges]);
  }, [readOnly, getNodes]);

  const layout = useCallback(() => {
    if (readOnly) return;
    const all = getNodes();
    const positions = autoLayout(
      all.map((n) => ({ id: n.id, width: n.measured?.width, height: n.measured?.height })),
      edges,
    );
    setNodes(all.map((n) => ({ ...n, position: positions.get(n.id) ?? n.position })));
    window.setTimeout(() => fitView({ padding: 0.2, maxZoom: 1, duration: 200 }), 0);
  }, [readOnly, getNodes, edges, fitView]);

  const focusNode = useCallback(
    (nodeId: string) => {
      const node = getNodes().find((n) => n.id === nodeId);
      if (!node) return;
      setNodes((all) => all.map((n) => ({ ...n, selected: n.id === nodeId })));
      setSelectedId(nodeId);
      setCenter(node.position.x + 110, node.position.y + 60, { zoom: 1, duration: 200 });
    },
    [getNodes, setCenter],
  );

  // --- saving ---------------------------------------------------------------------------------
  const [parent, setParent] = useState<string | null>(loadedHash);
  const save = useCallback(
    async (message: string) => {
      try {
        const version = await call(() =>
          api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}/versions", {
            params: { path: { ...path, flow_id: flow.id } },
            body: { document: doc, message, parent },
          }),
        );
        setSaved(doc);
        setParent(version.hash);
        toast.success(`Saved version ${version.hash.slice(0, 8)}.`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          throw new ApiError(
            409,
            `${err.detail} Your edits are still on this canvas: note them, reload to get the newest version, then apply them again.`,
            err.code,
          );
        }
        throw err;
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [doc, parent, flow.id, org.slug, wsId, toast],
  );

  // --- running --------------------------------------------------------------------------------
  const [runOpen, setRunOpen] = useState(false);
  const startRun = useCallback(
    async (inputs: Record<string, unknown>) => {
      const run = await call(() =>
        api.POST("/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}/runs", {
          params: { path: { ...path, flow_id: flow.id } },
          body: { inputs, version: parent ?? undefined },
        }),
      );
      setParams((p) => {
        const next = new URLSearchParams(p);
        next.set("run", run.id);
        return next;
      });
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [flow.id, parent, org.slug, wsId, setParams],
  );
  const run = useAsync(
    () =>
      runId
        ? call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}", { params: { path: { ...path, run_id: runId } } }))
        : Promise.resolve(null),
    [org.slug, wsId, runId],
  );
  const live = useRunStream(runId && run.data ? streamUrl(org.slug, wsId, runId) : null, run.reload);
  const runEnded = live.phase === "finished" || live.phase === "error" || (run.data ? TERMINAL.includes(run.data.status) : false);
  const [eventsTick, setEventsTick] = useState(0);
  const events = useAsync(async (): Promise<RunEvent[]> => {
    if (!runId) return [];
    const all: RunEvent[] = [];
    for (let after = 0; ; ) {
      const page = await call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}/events", {
          params: { path: { ...path, run_id: runId }, query: { after, limit: 1000 } },
        }),
      );
      all.push(...(page as RunEvent[]));
      if (page.length < 1000) return all;
      after = page[page.length - 1]!.seq;
    }
  }, [org.slug, wsId, runId, runEnded, eventsTick, live.steps.length]);
  const usage = useAsync(
    () =>
      runId
        ? call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}/usage", { params: { path: { ...path, run_id: runId } } }))
        : Promise.resolve(null),
    [org.slug, wsId, runId, runEnded, eventsTick],
  );
  const requests = useAsync(
    () =>
      runId
        ? call(() => api.GET("/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}/requests", { params: { path: { ...path, run_id: runId } } }))
        : Promise.resolve([]),
    [org.slug, wsId, runId, live.requestEvents, runEnded],
  );
  const paused = useMemo(
    () => new Set((requests.data ?? []).filter((r) => r.status === "pending").map((r) => r.node)),
    [requests.data],
  );
  const nodeIds = useMemo(() => nodes.map((n) => n.id), [nodes]);
  const runStates = useMemo(
    () => (runId ? overlayStates(nodeIds, live, statesFromEvents(events.data ?? []), paused) : null),
    [runId, nodeIds, live, events.data, paused],
  );
  const streams = useMemo(() => {
    const texts: Record<string, { text: string; open: boolean }> = {};
    if (!runId) return texts;
    for (const id of nodeIds) {
      const text = streamedText(live, id);
      if (text) texts[id] = text;
    }
    return texts;
  }, [runId, nodeIds, live]);
  const closeRun = () =>
    setParams((p) => {
      const next = new URLSearchParams(p);
      next.delete("run");
      return next;
    });

  // --- keyboard ----------------------------------------------------------------------------------
  const [saveOpen, setSaveOpen] = useState(false);
  const [helpOpen, setHelpOpen] = useState(false);
  const [versionsOpen, setVersionsOpen] = useState(false);
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (isTyping(event.target)) return;
      if (!wrapper.current?.closest(".fb")?.contains(event.target as Node) && event.target !== window.document.body) return;
      const mod = event.ctrlKey || event.metaKey;
      if (!mod) return;
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey && !readOnly) undo();
      else if (((key === "z" && event.shiftKey) || key === "y") && !readOnly) redo();
      else if (key === "c") copy();
      else if (key === "v" && !readOnly) paste();
      else if (key === "s" && !readOnly) setSaveOpen(true);
      else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [undo, redo, copy, paste, readOnly]);

  const canvasInfo: CanvasInfo = useMemo(
    () => ({ catalogue, ports: resolvedPorts, issues: issuesByNode, refusal, runStates, streams, readOnly }),
    [catalogue, resolvedPorts, issuesByNode, refusal, runStates, streams, readOnly],
  );

  const selected = nodes.find((n) => n.id === selectedId) ?? null;
  const runCost = (nodeId: string) => {
    const calls = (usage.data?.calls ?? []).filter((c) => c.node_id === nodeId);
    if (calls.length === 0) return { cost: null, tokens: null };
    return {
      cost: calls.reduce((sum, c) => sum + c.cost_micros, 0),
      tokens: {
        input: calls.reduce((sum, c) => sum + c.input_tokens, 0),
        output: calls.reduce((sum, c) => sum + c.output_tokens, 0),
      },
    };
  };

  let side: ReactNode;
  if (selected && runId) {
    const { cost, tokens } = runCost(selected.id);
    side = (
      <NodeRunPanel
        nodeId={selected.id}
        state={runStates?.[selected.id]}
        detail={nodeRunDetail(selected.id, doc, events.data ?? [])}
        stream={streams[selected.id] ?? null}
        costMicros={cost}
        tokens={tokens}
      />
    );
  } else if (selected) {
    side = (
      <NodeInspector
        key={selected.id}
        nodeId={selected.id}
        spec={catalogue.types.get(selected.data.nodeType)}
        config={selected.data.config}
        ports={resolvedPorts.get(selected.id)}
        issues={issuesByNode.get(selected.id) ?? []}
        readOnly={readOnly}
        secrets={secrets.data ?? []}
        onConfig={(config) => setConfig(selected.id, config)}
        catalogue={catalogue}
      />
    );
  } else {
    side = (
      <div className="stack small muted">
        <p>Select a node to see its ports and settings{runId ? ", and what went through it in this run" : ""}.</p>
        <PortLegend catalogue={catalogue} />
      </div>
    );
  }

  const runStatus = run.data
    ? TERMINAL.includes(run.data.status)
      ? run.data.status
      : live.phase === "finished"
        ? "completed"
        : live.phase === "error"
          ? "failed"
          : live.phase === "running"
            ? "running"
            : run.data.status
    : "queued";

  return (
    <div className="fb">
      <UnsavedGuard dirty={dirty} />
      <PageHeader
        breadcrumbs={
          <>
            <Link to={`/orgs/${org.slug}/workspaces`}>Workspaces</Link> / <Link to={base}>{wsName}</Link> / Flows
          </>
        }
        title={
          <span className="row" style={{ gap: 10 }}>
            {flow.name}
            {dirty ? (
              <Badge tone="warn">
                <span data-testid="unsaved">Unsaved changes</span>
              </Badge>
            ) : null}
            {readOnly ? (
              <span data-testid="read-only">
                <Badge tone="muted">Read-only</Badge>
              </span>
            ) : null}
          </span>
        }
        description={
          oldVersion ? (
            <span data-testid="old-version">
              Version <span className="mono">{oldVersion.slice(0, 12)}</span>, read-only.{" "}
              <Link to={`${base}/flows/${flow.id}`}>Back to latest</Link>
            </span>
          ) : parent ? (
            <>
              Version <span className="mono">{parent.slice(0, 12)}</span>
            </>
          ) : (
            "Not saved yet"
          )
        }
        actions={
          <>
            <div className="fb-help-anchor">
              <Button size="sm" variant="ghost" onClick={() => setHelpOpen((o) => !o)} aria-expanded={helpOpen}>
                Shortcuts
              </Button>
              {helpOpen ? <ShortcutsHelp onClose={() => setHelpOpen(false)} /> : null}
            </div>
            <Button size="sm" onClick={() => setVersionsOpen((o) => !o)} aria-expanded={versionsOpen}>
              Versions
            </Button>
            {mayRun ? (
              <Button
                size="sm"
                onClick={() => setRunOpen(true)}
                disabled={!parent || dirty}
                title={!parent || dirty ? "Save first: a run uses a saved version." : undefined}
              >
                Run
              </Button>
            ) : null}
            {!readOnly ? (
              <Button
                size="sm"
                variant="primary"
                onClick={() => setSaveOpen(true)}
                disabled={!dirty && parent !== null}
                title={hasErrors ? "The flow has errors: the server refuses to save it until they are fixed." : undefined}
              >
                Save
              </Button>
            ) : null}
          </>
        }
      />
      {!readOnly ? (
        <div className="fb-toolbar row" role="toolbar" aria-label="Canvas tools">
          <Button size="sm" onClick={undo} disabled={history.past.length === 0}>
            Undo
          </Button>
          <Button size="sm" onClick={redo} disabled={history.future.length === 0}>
            Redo
          </Button>
          <Button size="sm" onClick={layout} disabled={nodes.length === 0}>
            Auto-layout
          </Button>
          {validateError ? <span className="small fb-issue-error">{validateError}</span> : null}
        </div>
      ) : null}
      {runId ? (
        <div className="fb-runbar row" data-testid="builder-run" aria-label="Run shown on the canvas" role="region">
          <span>
            Run <Link to={`${base}/runs/${runId}`} className="mono">{runId.slice(0, 8)}</Link>
          </span>
          <RunStatusBadge status={runStatus} testId="builder-run-status" />
          {run.data && run.data.flow_version !== parent && run.data.flow_version !== oldVersion ? (
            <span className="small">
              This run used another version:{" "}
              <Link to={`?version=${run.data.flow_version}&run=${runId}`}>open it</Link>
            </span>
          ) : null}
          {live.error ? <span className="small fb-issue-error">{live.error}</span> : null}
          {live.connectionError ? <span className="small fb-issue-error">{live.connectionError}</span> : null}
          <Button size="sm" variant="ghost" onClick={() => setEventsTick((t) => t + 1)}>
            Refresh details
          </Button>
          <Button size="sm" variant="ghost" onClick={closeRun}>
            Close run view
          </Button>
        </div>
      ) : null}
      {runId ? (
        // Approvals the run waits for, answerable here by those who may (as on the run page).
        <RunRequests orgSlug={org.slug} wsId={wsId} runId={runId} version={`${live.requestEvents}:${runEnded}`} />
      ) : null}
      <div className={`fb-grid${readOnly ? " fb-grid-readonly" : ""}${versionsOpen ? " fb-grid-versions" : ""}`}>
        {!readOnly ? <Palette catalogue={catalogue} onAdd={(type) => addNode(type)} /> : null}
        <div className="fb-canvas card" ref={wrapper} onDrop={onDrop} onDragOver={onDragOver} data-testid="canvas">
          <CanvasContext.Provider value={canvasInfo}>
            <ReactFlow<FlowNode, Edge>
              nodes={nodes}
              edges={edges}
              nodeTypes={NODE_TYPES}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              onConnectEnd={onConnectEnd}
              isValidConnection={isValidConnection}
              onPaneClick={() => setSelectedId(null)}
              nodesDraggable={!readOnly}
              nodesConnectable={!readOnly}
              edgesReconnectable={false}
              deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
              multiSelectionKeyCode={["Shift", "Meta", "Control"]}
              // Fitted once to a saved flow; an empty canvas keeps its zoom as nodes are dropped.
              fitView={initial.nodes.length > 0}
              fitViewOptions={{ padding: 0.2, maxZoom: 1 }}
              minZoom={0.2}
              proOptions={{ hideAttribution: true }}
              aria-label="Flow canvas"
            >
              <Background gap={16} />
              <Controls showInteractive={false} />
              <MiniMap pannable zoomable ariaLabel="Mini map of the flow" />
            </ReactFlow>
          </CanvasContext.Provider>
          {nodes.length === 0 ? (
            <div className="fb-empty" aria-hidden={readOnly || undefined}>
              {readOnly ? "This flow has no nodes." : "Drag nodes here from the palette to start the flow."}
            </div>
          ) : null}
        </div>
        <aside className="fb-side card" aria-label="Details">
          <div className="fb-side-body">{side}</div>
          <ProblemsList issues={issues} checking={checking} onFocus={focusNode} />
        </aside>
        {versionsOpen ? (
          <VersionsPanel
            orgSlug={org.slug}
            wsId={wsId}
            flowId={flow.id}
            current={flow.current_version === loadedHash ? parent : flow.current_version}
            shown={oldVersion ?? parent}
            refresh={parent}
            onClose={() => setVersionsOpen(false)}
          />
        ) : null}
      </div>
      {saveOpen ? (
        <SaveDialog
          onClose={() => setSaveOpen(false)}
          onSave={save}
        />
      ) : null}
      {runOpen ? <RunDialog document={doc} onStart={startRun} onClose={() => setRunOpen(false)} /> : null}
    </div>
  );
}
