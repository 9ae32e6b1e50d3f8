/** One node on the builder's canvas: its typed ports as handles, its problems, and its run state. */
import { Handle, Position, type NodeProps } from "@xyflow/react";
import { createContext, memo, useContext } from "react";
import { portColour, type Catalogue, type PortSpec, type ResolvedPorts } from "../builder/catalogue";
import { nodePorts } from "../builder/connections";
import type { FlowNode } from "../builder/document";
import { RUN_STATE_LABEL, type NodeRunState } from "../builder/runview";

export interface Issue {
  code: string;
  message: string;
  node: string | null;
  port: string | null;
  severity: string;
}

/** What every node on the canvas reads: kept out of node data so it is not part of the document. */
export interface CanvasInfo {
  catalogue: Catalogue;
  /** The ports the server resolved from each node's config. */
  ports: ResolvedPorts;
  issues: Map<string, Issue[]>;
  /** The refused connection's reason, shown next to the node it was refused at. */
  refusal: { node: string; port: string | null; message: string } | null;
  runStates: Record<string, NodeRunState> | null;
  streams: Record<string, { text: string; open: boolean }>;
  readOnly: boolean;
}

export const CanvasContext = createContext<CanvasInfo | null>(null);

function PortHandle({ port, side, colour, readOnly }: { port: PortSpec; side: "input" | "output"; colour: string; readOnly: boolean }) {
  const title = `${port.name}: ${port.type} ${side}${port.required ? "" : " (optional)"}${port.description ? ` — ${port.description}` : ""}`;
  return (
    <Handle
      type={side === "input" ? "target" : "source"}
      position={side === "input" ? Position.Left : Position.Right}
      id={port.name}
      isConnectable={!readOnly}
      className="fb-handle"
      style={{ background: colour, borderColor: colour }}
      title={title}
      aria-label={title}
      data-port-type={port.type}
      data-port={port.name}
      data-testid={`handle-${side}-${port.name}`}
    />
  );
}

export const FlowNodeView = memo(function FlowNodeView({ id, data, selected }: NodeProps<FlowNode>) {
  const info = useContext(CanvasContext)!;
  const spec = info.catalogue.types.get(data.nodeType);
  const ports = nodePorts({ id, type: "flow", position: { x: 0, y: 0 }, data }, info.catalogue, info.ports);
  const issues = info.issues.get(id) ?? [];
  const errors = issues.filter((i) => i.severity === "error");
  const state = info.runStates?.[id];
  const stream = info.streams[id];
  const refusal = info.refusal?.node === id ? info.refusal : null;
  const rows = Math.max(ports.inputs.length, ports.outputs.length);
  const classes = [
    "fb-node",
    selected && "fb-node-selected",
    errors.length > 0 && "fb-node-invalid",
    state && `fb-node-${state}`,
  ]
    .filter(Boolean)
    .join(" ");
  return (
    <div
      className={classes}
      data-testid="flow-node"
      data-node-id={id}
      data-node-type={data.nodeType}
      data-run-state={state}
      aria-label={`${spec?.title ?? data.nodeType} node ${id}${state ? `, ${RUN_STATE_LABEL[state]}` : ""}`}
    >
      <div className="fb-node-head">
        <span className="fb-node-title">{spec?.title ?? data.nodeType}</span>
        {state ? (
          <span className={`fb-state fb-state-${state}`} data-testid="node-run-state">
            {RUN_STATE_LABEL[state]}
          </span>
        ) : null}
      </div>
      <div className="fb-node-id mono">{id}</div>
      {rows > 0 ? (
        <div className="fb-ports">
          {Array.from({ length: rows }, (_, row) => {
            const input = ports.inputs[row];
            const output = ports.outputs[row];
            return (
              <div className="fb-port-row" key={row}>
                <span className="fb-port fb-port-in">
                  {input ? (
                    <>
                      <PortHandle
                        port={input}
                        side="input"
                        colour={portColour(info.catalogue.compatibility, input.type)}
                        readOnly={info.readOnly}
                      />
                      {input.name}
                      {input.required ? <span aria-hidden="true">*</span> : null}
                    </>
                  ) : null}
                </span>
                <span className="fb-port fb-port-out">
                  {output ? (
                    <>
                      {output.name}
                      <PortHandle
                        port={output}
                        side="output"
                        colour={portColour(info.catalogue.compatibility, output.type)}
                        readOnly={info.readOnly}
                      />
                    </>
                  ) : null}
                </span>
              </div>
            );
          })}
        </div>
      ) : (
        <div className="fb-node-hint small muted">
          {data.nodeType === "input" ? "Add fields to give it outputs." : "No ports yet."}
        </div>
      )}
      {stream ? (
        <pre className="fb-node-stream run-text nowheel" data-testid="node-stream" aria-busy={stream.open || undefined}>
          {stream.text}
        </pre>
      ) : null}
      {issues.length > 0 ? (
        <ul className="fb-node-issues" data-testid="node-issues">
          {issues.map((issue, i) => (
            <li key={i} className={issue.severity === "error" ? "fb-issue-error" : "fb-issue-warning"}>
              {issue.message}
            </li>
          ))}
        </ul>
      ) : null}
      {refusal ? (
        <div className="fb-refusal" role="alert" data-testid="connection-refused">
          {refusal.message}
        </div>
      ) : null}
    </div>
  );
});
