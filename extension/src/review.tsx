/**
 * A gate to review: the waiting task's output rendered as Lab renders outputs (text as Markdown, JSON as
 * a tree; untrusted, so sanitized), with Approve, Reject and "Edit, then approve" beside it. An edit is
 * sent with the approval; the server checks it against the task's schema and records it as the
 * approver's.
 */

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import React, { useEffect, useRef, useState } from 'react';

/** An output rendered by Lab's renderers: a string as Markdown, anything else as JSON. */
function Rendered(props: { value: unknown; rendermime: IRenderMimeRegistry | null }): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const { value, rendermime } = props;
  const mime = typeof value === 'string' ? 'text/markdown' : 'application/json';
  const data = { [mime]: value as string };
  const usable = rendermime?.preferredMimeType(data, 'any') === mime ? rendermime : null;
  useEffect(() => {
    if (!usable || !host.current) {
      return;
    }
    const renderer = usable.createRenderer(mime);
    const node = host.current;
    void renderer.renderModel(usable.createModel({ data, trusted: false })).then(() => {
      node.replaceChildren(renderer.node);
    });
    return () => renderer.dispose();
  }, [usable, JSON.stringify(value)]);
  if (!usable) {
    return <pre className="pop-Review-raw">{typeof value === 'string' ? value : JSON.stringify(value, null, 2)}</pre>;
  }
  return <div className="pop-Review-output" ref={host} />;
}

export interface ReviewProps {
  task: string;
  value: unknown;
  rendermime: IRenderMimeRegistry | null;
  /** Approve, with the edited output when given. */
  approve: (edited?: unknown) => void;
  reject: () => void;
}

/** One waiting gate: its task's output and what the approver may do. */
export function GateReview(props: ReviewProps): JSX.Element {
  const { task, value } = props;
  const asText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v, null, 2));
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(asText(value));
  const [problem, setProblem] = useState<string | null>(null);
  const send = () => {
    if (typeof value === 'string') {
      props.approve(text);
      return;
    }
    try {
      props.approve(JSON.parse(text));
    } catch (error) {
      setProblem(`Not JSON: ${(error as Error).message}`);
    }
  };
  return (
    <div className="pop-Review" data-task={task}>
      <h3>
        {task} <span className="pop-Review-badge">waits for your approval</span>
      </h3>
      {editing ? (
        <>
          <textarea
            className="pop-Review-editor"
            spellCheck={typeof value === 'string'}
            value={text}
            onChange={event => (setText(event.target.value), setProblem(null))}
            rows={Math.min(24, Math.max(6, text.split('\n').length + 1))}
          />
          {problem && <div className="pop-Message pop-Message-error">{problem}</div>}
          <div className="pop-Review-actions">
            <button className="jp-mod-styled jp-mod-accept" onClick={send}>
              Approve with my edit
            </button>
            <button
              className="jp-mod-styled"
              onClick={() => (setEditing(false), setText(asText(value)), setProblem(null))}
            >
              Discard the edit
            </button>
          </div>
        </>
      ) : (
        <>
          <Rendered value={value} rendermime={props.rendermime} />
          <div className="pop-Review-actions">
            <button className="jp-mod-styled jp-mod-accept" onClick={() => props.approve()}>
              Approve
            </button>
            <button className="jp-mod-styled" onClick={() => setEditing(true)}>
              Edit, then approve
            </button>
            <button className="jp-mod-styled jp-mod-warn" onClick={props.reject}>
              Reject
            </button>
          </div>
        </>
      )}
    </div>
  );
}
