/**
 * A stage's log, followed while the stage runs: asked for again from where the last answer ended, once a
 * second, only while this view shows it (the event stream carries job state, not every stage's output
 * to every Lab user). "Open the notebook as it stands" has the running stage write its notebook, then
 * opens it as the job's record.
 */

import React, { useEffect, useRef, useState } from 'react';

import { PopAPI } from './api';
import { reasonText } from './reason';
import { recordPath } from './records';

/** At most this much of a log is kept on screen (its end). */
const KEEP_CHARS = 200_000;

export interface StageRef {
  task: string;
  stage: string;
  refinement: number;
}

export interface LiveLogProps {
  api: PopAPI;
  job: string;
  run: StageRef;
  open: (path: string) => void;
  close: () => void;
}

export function LiveLog(props: LiveLogProps): JSX.Element {
  const { api, job, run } = props;
  const [text, setText] = useState('');
  const [state, setState] = useState('running');
  const [note, setNote] = useState<string | null>(null);
  const pre = useRef<HTMLPreElement>(null);
  const key = `${run.task}/${run.stage}/${run.refinement}`;

  useEffect(() => {
    let live = true;
    let offset = 0;
    let timer: number | null = null;
    setText('');
    setNote(null);
    const read = () => {
      api.log(job, run.task, run.stage, run.refinement, offset).then(
        chunk => {
          if (!live) {
            return;
          }
          offset = chunk.offset;
          const skipped = chunk.skipped > 0 ? `[… ${chunk.skipped} bytes before this]\n` : '';
          if (chunk.text || skipped) {
            setText(previous => (previous + skipped + chunk.text).slice(-KEEP_CHARS));
          }
          setState(chunk.state);
          if (chunk.state === 'running' || chunk.state === 'pending') {
            timer = window.setTimeout(read, 1000);
          }
        },
        (reason: unknown) => live && setNote(reasonText(reason))
      );
    };
    read();
    return () => {
      live = false;
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    };
  }, [job, key]);

  // follow the end, unless the reader has scrolled up to read
  useEffect(() => {
    const node = pre.current;
    if (node && node.scrollHeight - node.scrollTop - node.clientHeight < 40) {
      node.scrollTop = node.scrollHeight;
    }
  }, [text]);

  const openNotebook = () => {
    setNote(null);
    api.snapshot(job, run.task, run.stage, run.refinement).then(
      snap => {
        if (snap.saved) {
          props.open(recordPath(job, snap.notebook));
        }
        if (snap.message) {
          setNote(snap.message);
        }
      },
      (reason: unknown) => setNote(reasonText(reason))
    );
  };

  const running = state === 'running';
  return (
    <div className="pop-LiveLog" data-task={run.task} data-stage={run.stage}>
      <div className="pop-LiveLog-head">
        <span className={`pop-Dot pop-state-${state}`} />
        <b>
          {run.task} / {run.stage}
          {run.refinement > 0 && `.r${run.refinement}`}
        </b>{' '}
        {running ? 'running: its output, live' : state}
        <span className="pop-LiveLog-actions">
          <button className="jp-mod-styled" onClick={openNotebook}>
            {running ? 'Open the notebook as it stands' : 'Open its notebook'}
          </button>
          <button className="jp-mod-styled" onClick={props.close} title="Stop following this stage">
            Close
          </button>
        </span>
      </div>
      {note && <div className="pop-Message">{note}</div>}
      <pre ref={pre} className="pop-LiveLog-text">
        {text || (running ? 'Nothing printed yet.' : 'It printed nothing.')}
      </pre>
    </div>
  );
}
