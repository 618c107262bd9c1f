/**
 * The left-sidebar Pipelines panel: every job, live, with its state, progress, where it is and what it
 * has cost. A click opens the job's view.
 */

import { ReactWidget } from '@jupyterlab/apputils';
import React, { useState } from 'react';

import { JobsModel } from './model';
import { counts, Filter, JobsState, visibleJobs, whereNow } from './state';
import { JobSummary } from './types';

const FILTERS: [string, string][] = [
  ['', 'all'],
  ['running', 'running'],
  ['waiting', 'waiting'],
  ['queued', 'queued'],
  ['done', 'done'],
  ['failed', 'failed'],
  ['cancelled', 'cancelled']
];

const CONNECTION_TEXT: Record<string, string> = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  missing: 'no server extension',
  forbidden: 'not allowed',
  error: 'error'
};

export interface PanelActions {
  openJob: (id: string) => void;
  runPipeline(): void;
}

function JobRow(props: { job: JobSummary; open: (id: string) => void }): JSX.Element {
  const { job } = props;
  const where = whereNow(job);
  return (
    <li
      className={`pop-JobRow pop-state-${job.state}`}
      data-job-id={job.id}
      title={`${job.id}\n${job.name ?? ''}`}
      tabIndex={0}
      onClick={() => props.open(job.id)}
      onKeyDown={event => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          props.open(job.id);
        }
      }}
    >
      <div className="pop-JobRow-top">
        <span className="pop-JobRow-name">{job.name || job.id}</span>
        <span className="pop-Badge">{job.state}</span>
      </div>
      <div className="pop-JobRow-meta">
        <span>{job.pipeline}</span>
        <span className="pop-JobRow-cost">{job.cost}</span>
      </div>
      <div className="pop-Progress" aria-label={`${job.progress}% done`}>
        <div className="pop-Progress-bar" style={{ width: `${Math.max(0, Math.min(100, job.progress))}%` }} />
      </div>
      {where && <div className="pop-JobRow-where">{where}</div>}
    </li>
  );
}

function PanelBody(props: { model: JobsModel; state: JobsState; actions: PanelActions }): JSX.Element {
  const { model, state, actions } = props;
  const [filter, setFilter] = useState<Filter>({});
  const jobs = visibleJobs(state, filter);
  const tally = counts(state);
  const refused = state.connection === 'missing' || state.connection === 'forbidden';
  return (
    <div className="pop-Panel-body">
      <div className="pop-Panel-header">
        <h2>Pipelines</h2>
        <span className={`pop-Connection pop-Connection-${state.connection}`} title={state.message ?? ''}>
          {CONNECTION_TEXT[state.connection]}
        </span>
      </div>
      {state.dataDir && (
        <div className="pop-Panel-dataDir" title={state.dataDir}>
          jobs in <code>{state.dataDir}</code>
        </div>
      )}
      {state.message && <div className={`pop-Message ${refused ? 'pop-Message-error' : ''}`}>{state.message}</div>}
      {!refused && (
        <>
          <div className="pop-Panel-tools">
            <button className="jp-mod-styled jp-mod-accept pop-RunButton" onClick={() => actions.runPipeline()}>
              Run pipeline…
            </button>
            <button className="jp-mod-styled" title="Fetch the job list again" onClick={() => void model.refresh()}>
              ↻
            </button>
          </div>
          <div className="pop-Panel-filters">
            <select
              className="jp-mod-styled"
              aria-label="state"
              value={filter.state ?? ''}
              onChange={event => setFilter({ ...filter, state: event.target.value })}
            >
              {FILTERS.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
            <input
              className="jp-mod-styled pop-Search"
              type="search"
              placeholder="search id, pipeline, task, error"
              value={filter.search ?? ''}
              onChange={event => setFilter({ ...filter, search: event.target.value })}
            />
          </div>
          <div className="pop-Panel-counts">
            {tally.running} running · {tally.waiting} waiting · {tally.queued} queued · {tally.ended} ended
            {state.total > Object.keys(state.jobs).length &&
              ` (newest ${Object.keys(state.jobs).length} of ${state.total})`}
          </div>
          <ul className="pop-JobList">
            {jobs.map(job => (
              <JobRow key={job.id} job={job} open={actions.openJob} />
            ))}
          </ul>
          {jobs.length === 0 && state.connection !== 'connecting' && (
            <div className="pop-Empty">No jobs{filter.state || filter.search ? ' match' : ' yet: run a pipeline'}.</div>
          )}
          {state.total > Object.keys(state.jobs).length && (
            <button className="jp-mod-styled pop-More" onClick={() => void model.showMore()}>
              show older jobs
            </button>
          )}
        </>
      )}
    </div>
  );
}

export class PipelinesPanel extends ReactWidget {
  constructor(
    readonly model: JobsModel,
    readonly actions: PanelActions
  ) {
    super();
    this.id = 'pop-pipelines';
    this.addClass('pop-Panel');
    this.title.caption = 'Pipelines (pop-nb jobs)';
    // every change re-renders from the model's state as it is then: nothing depends on when React
    // mounts relative to the first page and the stream's first events
    model.changed.connect(() => this.update(), this);
  }

  render(): JSX.Element {
    return <PanelBody model={this.model} state={this.model.state} actions={this.actions} />;
  }
}
