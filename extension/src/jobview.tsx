/**
 * One job in the main area: the task x stage grid, the error with its failing cell, outputs and products,
 * and the actions that apply. Every stage run (refine passes too) opens its executed notebook in a Lab
 * tab through the document manager; nothing navigates the page.
 */

import { Dialog, InputDialog, ReactWidget, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import React, { useEffect, useReducer, useRef, useState } from 'react';

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { PopAPI } from './api';
import { LiveLog, StageRef } from './livelog';
import { GateReview } from './review';
import { seedText } from './seed';
import { usd } from './experiments';
import { JobsModel } from './model';
import { runsByCell, SHORT, STAGES } from './grid';
import { recordPath } from './records';
import { actionsFor, ranOn, tabLabel, whereNow, withSummary } from './state';
import { JobDetail } from './types';
import { reasonText } from './reason';

export interface JobViewOptions {
  id: string;
  api: PopAPI;
  model: JobsModel;
  /** Open a file (a path as Lab names it) in a tab. */
  open: (path: string) => void;
  /** Lab's renderers, for a gate's output (Markdown, JSON); without them it shows as text. */
  rendermime?: IRenderMimeRegistry | null;
  /** Open the Run form on `pipeline`, filled with `seed` (a seed's text). */
  runAgain?: (pipeline: string, seed: string) => void;
}

function duration(ms: number | null): string {
  if (ms === null) {
    return '';
  }
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function JobBody(props: { options: JobViewOptions; named: (job: JobDetail) => void }): JSX.Element {
  const { id, api, model, open } = props.options;
  const [job, setJob] = useState<JobDetail | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [fromTask, setFromTask] = useState('');
  const [budget, setBudget] = useState('');
  const [version, bump] = useReducer((n: number) => n + 1, 0);
  // the stage whose log is shown: one picked by a click, else the one running (unless closed)
  const [chosen, setChosen] = useState<StageRef | null>(null);
  const [following, setFollowing] = useState(true);
  const lastRunning = useRef<StageRef | null>(null);
  const deleted = useRef(false);

  useEffect(() => {
    let live = true;
    if (deleted.current) {
      return; // nothing to fetch: it is gone, and the view says so
    }
    // a fetch still on its way when the job is deleted answers for a job that is gone: dropped, so
    // the view keeps saying what happened to it
    const current = () => live && !deleted.current;
    api.job(id).then(
      detail => current() && (setJob(detail), setProblem(null), props.named(detail)),
      (reason: unknown) => current() && setProblem(reasonText(reason))
    );
    return () => {
      live = false;
    };
  }, [id, version]);

  useEffect(() => {
    let timer: number | null = null;
    const onChange = (_: unknown, changed: string | null) => {
      // what the event carried (state, progress, cost, actions) shows at once, as in the panel; the
      // rest of the detail (stages, outputs) follows with the fetch
      if (changed === id) {
        setJob(previous => (previous ? withSummary(previous, model.state.jobs[id]) : previous));
      }
      if ((changed === id || changed === null) && timer === null) {
        timer = window.setTimeout(() => ((timer = null), bump()), 150); // a burst of events, one fetch
      }
    };
    model.jobChanged.connect(onChange);
    return () => {
      model.jobChanged.disconnect(onChange);
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    };
  }, [id]);

  if (!job) {
    return <div className="pop-JobView-body">{problem ?? `Loading ${id}…`}</div>;
  }

  const openFile = (relative: string | null) => {
    if (relative) {
      open(recordPath(job.id, relative));
    }
  };
  const act = async (what: string, action: () => Promise<unknown>) => {
    try {
      await action();
      bump();
    } catch (reason) {
      await showErrorMessage(`Could not ${what} ${id}`, reasonText(reason));
    }
  };
  const reject = async () => {
    const reason = await InputDialog.getText({ title: `Reject ${id}`, label: 'Why (kept in the job log):' });
    if (reason.button.accept) {
      await act('reject', () => api.reject(id, reason.value ?? ''));
    }
  };
  // archive (out of the way, still readable) or delete (for good), each confirmed
  const tidy = async (what: 'archive' | 'delete') => {
    const sure = await showDialog({
      title: what === 'archive' ? `Archive ${id}?` : `Delete ${id}?`,
      body:
        what === 'archive'
          ? 'It moves to archive/: no longer listed with the other jobs, still opened from here, restored with one click.'
          : 'Its folder (notebooks, outputs, logs, products) is removed for good. This cannot be undone.',
      buttons: [
        Dialog.cancelButton({ label: 'Keep it' }),
        what === 'archive' ? Dialog.okButton({ label: 'Archive' }) : Dialog.warnButton({ label: 'Delete for good' })
      ]
    });
    if (!sure.button.accept) {
      return;
    }
    if (what === 'archive') {
      await act('archive', () => api.archive(id).then(() => model.touched(id)));
      return;
    }
    try {
      const gone = await api.remove(id);
      deleted.current = true;
      setJob(null);
      setProblem(`Deleted: job ${gone.id} (${gone.files} files) is gone from ${gone.place}/.`);
      void model.touched(id);
    } catch (reason) {
      await showErrorMessage(`Could not delete ${id}`, reasonText(reason));
    }
  };
  // answered at once; the job's end arrives over the event stream
  const cancel = async () => {
    const sure = await showDialog({
      title: `Cancel ${id}?`,
      body: 'The running stage is stopped; work already done is kept and the job can be resumed.',
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel job' })]
    });
    if (sure.button.accept) {
      await act('cancel', () => api.cancel(id));
    }
  };
  const running = job.stages.filter(s => s.state === 'running').pop();
  if (running) {
    lastRunning.current = { task: running.task, stage: running.stage, refinement: running.refinement };
  }
  // the last stage seen running stays shown when it ends, until another starts
  const followed: StageRef | null = chosen ?? (following ? lastRunning.current : null);
  const allowed = actionsFor(job);
  const cells = runsByCell(job);
  const tasks = Object.keys(job.tasks);
  // a done job has no "where it stopped": it is run again from a task (a prompt changed, say)
  const finished = job.state === 'done';
  const from = fromTask || (finished ? (tasks[0] ?? '') : '');
  // stopped by its budget: resuming as it is would stop again, so the view asks for a new one
  const overBudget = job.error?.type === 'BudgetExceeded' && allowed.resume;

  return (
    <div className="pop-JobView-body">
      <div className="pop-JobView-head">
        <h2>{job.name || job.id}</h2>
        <div className="pop-JobView-meta">
          <code>{job.id}</code> · {job.pipeline} ·{' '}
          <span className={`pop-Badge pop-state-${job.state}`}>{job.state}</span> · {job.progress}% · {job.totals.calls}{' '}
          calls, {job.totals.input_tokens}+{job.totals.output_tokens} tokens ·{' '}
          <b className="pop-JobView-cost">{job.cost}</b>
          {job.saved && (
            <>
              {' '}
              · <span className="pop-JobView-saved">{job.saved}</span>
            </>
          )}
          {whereNow(job) && <> · {whereNow(job)}</>}
          {ranOn(job) && <> · {ranOn(job)}</>}
        </div>
      </div>

      <div className="pop-JobView-actions">
        {allowed.resume && (
          <>
            <select
              className="jp-mod-styled"
              aria-label="resume from task"
              value={from}
              onChange={event => setFromTask(event.target.value)}
            >
              {!finished && <option value="">where it stopped</option>}
              {tasks.map(task => (
                <option key={task} value={task}>
                  from {task}
                </option>
              ))}
            </select>
            {overBudget && (
              <label className="pop-Budget" title="The job's new budget_usd: calls that fit it are sent">
                new budget $
                <input
                  className="jp-mod-styled"
                  type="number"
                  min="0"
                  step="any"
                  aria-label="new budget in USD"
                  placeholder="e.g. 2.00"
                  value={budget}
                  onChange={event => setBudget(event.target.value)}
                />
              </label>
            )}
            <button
              className="jp-mod-styled jp-mod-accept"
              disabled={overBudget && !(Number(budget) > 0)}
              title={overBudget && !(Number(budget) > 0) ? 'Give the job a larger budget first' : ''}
              onClick={() =>
                void act('resume', () => api.resume(id, from || undefined, overBudget ? Number(budget) : undefined))
              }
            >
              {overBudget ? 'Resume with this budget' : 'Resume'}
            </button>
          </>
        )}
        {allowed.approve && job.waiting_gates.length === 0 && (
          <>
            <button className="jp-mod-styled jp-mod-accept" onClick={() => void act('approve', () => api.approve(id))}>
              Approve
            </button>
            <button className="jp-mod-styled jp-mod-warn" onClick={() => void reject()}>
              Reject
            </button>
          </>
        )}
        {allowed.cancel && (
          <button className="jp-mod-styled jp-mod-warn" onClick={() => void cancel()}>
            Cancel
          </button>
        )}
        <span className="pop-JobView-more">
          {props.options.runAgain && Object.keys(job.seed).length > 0 && (
            <button
              className="jp-mod-styled"
              title="The Run form, filled with this job's seed: change what you like, then Run"
              onClick={() => props.options.runAgain!(job.pipeline, seedText(job.seed))}
            >
              Run again with these inputs
            </button>
          )}
          <a className="jp-mod-styled pop-ButtonLink" href={api.zipUrl(id)} download={`${id}.zip`}>
            Download zip
          </a>
          {allowed.archive && (
            <button className="jp-mod-styled" onClick={() => void tidy('archive')}>
              Archive
            </button>
          )}
          {allowed.restore && (
            <button
              className="jp-mod-styled"
              onClick={() => void act('restore', () => api.restore(id).then(() => model.touched(id)))}
            >
              Restore
            </button>
          )}
          {allowed.delete && (
            <button className="jp-mod-styled jp-mod-warn" onClick={() => void tidy('delete')}>
              Delete
            </button>
          )}
        </span>
      </div>

      {allowed.approve &&
        job.waiting_gates.map(task => (
          <GateReview
            key={task}
            task={task}
            value={job.outputs[task]}
            rendermime={props.options.rendermime ?? null}
            approve={edited =>
              void act('approve', () => api.approve(id, edited === undefined ? undefined : { [task]: edited }))
            }
            reject={() => void reject()}
          />
        ))}

      {job.error && (
        <div className="pop-Error">
          <div>
            <b>{job.error.type}</b>
            {job.error.task && ` in ${job.error.task}${job.error.stage ? ' / ' + job.error.stage : ''}`}:{' '}
            {job.error.message}
          </div>
          {job.error.cell_source && (
            <>
              <div className="pop-Error-cell">
                {job.error.exec_count !== null ? `In [${job.error.exec_count}]` : 'The failing cell'}:
              </div>
              <pre>{job.error.cell_source}</pre>
            </>
          )}
          {job.error.fix && <div className="pop-Error-fix">Fix: {job.error.fix}</div>}
          {overBudget && (
            <div className="pop-Error-fix">Or here: a new budget above, then Resume with this budget.</div>
          )}
          {job.error.notebook && (
            <button className="jp-mod-styled" onClick={() => openFile(job.error!.notebook)}>
              {job.error.type === 'Cancelled' ? 'Open the notebook where it stopped' : 'Open the failed notebook'}
            </button>
          )}
        </div>
      )}

      <table className="pop-Grid">
        <thead>
          <tr>
            <th>task</th>
            {STAGES.map(stage => (
              <th key={stage} title={stage}>
                {SHORT[stage]}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {tasks.map(task => (
            <tr key={task} className={job.tasks[task].gate === 'waiting' ? 'pop-Row-waiting' : undefined}>
              <th
                className={`pop-state-${job.tasks[task].state}`}
                title={
                  job.tasks[task].gate === 'waiting'
                    ? 'done; waits for your approval (below)'
                    : (job.tasks[task].skip_reason ?? job.tasks[task].state)
                }
              >
                {task}
                {job.tasks[task].gate === 'waiting' && <span className="pop-Row-tag"> waits</span>}
              </th>
              {STAGES.map(stage => {
                const runs = cells.get(`${task}\u0000${stage}`) ?? [];
                const last = runs[runs.length - 1];
                if (!last) {
                  return <td key={stage} className="pop-Cell pop-Cell-empty" />;
                }
                // a running stage is followed (its log, live); one that ran opens its notebook
                const live = last.state === 'running';
                const openable = !!last.notebook || live;
                const activate = () =>
                  live
                    ? (setChosen({ task, stage: last.stage, refinement: last.refinement }), setFollowing(true))
                    : openFile(last.notebook);
                return (
                  <td
                    key={stage}
                    className={`pop-Cell pop-state-${last.state} ${openable ? 'pop-Cell-open' : ''}`}
                    data-task={task}
                    data-stage={stage}
                    title={`${task} / ${last.key}: ${last.state}${live ? '\nfollow its output' : last.notebook ? '\nopen ' + last.notebook : ''}`}
                    // reachable with Tab, opened with Enter or Space, as a button is
                    tabIndex={openable ? 0 : -1}
                    role={openable ? 'button' : undefined}
                    aria-label={`${task} ${last.key}: ${last.state}${live ? ', follow its output' : openable ? ', open its notebook' : ''}`}
                    onKeyDown={event => {
                      if (openable && (event.key === 'Enter' || event.key === ' ')) {
                        event.preventDefault();
                        activate();
                      }
                    }}
                    onClick={activate}
                  >
                    {runs.length > 1 ? `×${runs.length}` : ''}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>

      {followed && (
        <LiveLog api={api} job={id} run={followed} open={open} close={() => (setChosen(null), setFollowing(false))} />
      )}

      <details className="pop-Runs" open={job.stages.length <= 40}>
        <summary>Stage runs ({job.stages.length})</summary>
        <ul>
          {job.stages.map(run => (
            <li key={`${run.task}/${run.key}/${run.attempt}`}>
              <span className={`pop-Dot pop-state-${run.state}`} />
              {run.notebook ? (
                <a
                  href="#"
                  className="pop-RunLink"
                  data-notebook={run.notebook}
                  onClick={event => {
                    event.preventDefault();
                    openFile(run.notebook);
                  }}
                >
                  {run.task} / {run.key}
                </a>
              ) : (
                <span>
                  {run.task} / {run.key}
                </span>
              )}{' '}
              {run.state} {duration(run.duration_ms)}
              {run.calls > 0 && ` · ${usd(run.cost_usd)} · ${run.calls} call${run.calls === 1 ? '' : 's'}`}
              {run.attempt > 1 && ` (attempt ${run.attempt})`}
            </li>
          ))}
        </ul>
      </details>

      {job.runs.length > 1 && (
        <details className="pop-History" open>
          <summary>Runs ({job.runs.length})</summary>
          <ol>
            {job.runs.map(run => (
              <li key={run.n} data-run={run.n}>
                <span className={`pop-Dot pop-state-${run.state}`} />
                <b>Run {run.n}</b> {run.state} · {run.cost}
                {run.cache_hits > 0 && ` (${run.cache_hits} answered from the cache)`} · {run.calls} calls
                {run.ended_at && ` · ended ${run.ended_at.slice(0, 19).replace('T', ' ')}`}
                {run.how && <div className="pop-History-how">resumed {run.how}</div>}
                {run.error && <div className="pop-History-error">{run.error}</div>}
                {run.n === job.runs.length ? (
                  <div className="pop-History-how">this run: its notebooks are the stages above</div>
                ) : (
                  <div className="pop-History-notebooks">
                    {run.notebooks.map(notebook => (
                      <a
                        key={notebook}
                        href="#"
                        className="pop-RunLink"
                        data-notebook={notebook}
                        title={`open ${notebook} (kept when run ${run.n + 1} ran its task again)`}
                        onClick={event => {
                          event.preventDefault();
                          openFile(notebook);
                        }}
                      >
                        {notebook.replace(/^history\/\d+\//, '')}
                      </a>
                    ))}
                  </div>
                )}
              </li>
            ))}
          </ol>
        </details>
      )}

      {job.products.length > 0 && (
        <div className="pop-Products">
          <h3>Products</h3>
          <ul>
            {job.products.map(product => (
              <li key={product}>
                <a
                  href="#"
                  onClick={event => {
                    event.preventDefault();
                    openFile(`products/${product}`);
                  }}
                >
                  {product}
                </a>
              </li>
            ))}
          </ul>
        </div>
      )}

      {Object.keys(job.seed).length > 0 && (
        <details className="pop-Seed">
          <summary>Seed</summary>
          <pre>{seedText(job.seed)}</pre>
        </details>
      )}

      {Object.keys(job.outputs).length > 0 && (
        <details className="pop-Outputs">
          <summary>Outputs</summary>
          {Object.entries(job.outputs).map(([task, value]) => (
            <div key={task}>
              <h4>{task}</h4>
              <pre>{JSON.stringify(value, null, 2)}</pre>
            </div>
          ))}
        </details>
      )}
    </div>
  );
}

export class JobView extends ReactWidget {
  constructor(readonly options: JobViewOptions) {
    super();
    this.addClass('pop-JobView');
    this.id = `pop-job-${options.id}`;
    this.title.label = options.id;
    this.title.caption = `pop-nb job ${options.id}`;
    this.title.closable = true;
  }

  render(): JSX.Element {
    return <JobBody options={this.options} named={job => this.named(job)} />;
  }

  /** The tab says which job it is: its name and the end of its id; the whole id on hover. */
  named(job: JobDetail): void {
    this.title.label = tabLabel(job.id, job.name);
    this.title.caption = `pop-nb job ${job.id}${job.name ? `\n${job.name}` : ''}\n${job.pipeline} · ${job.state}`;
  }
}
