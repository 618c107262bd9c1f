/**
 * The left-sidebar Pipelines panel: every job, live, with its state, progress, where it is and what it
 * has cost, the project's experiments with each variant's progress, and its schedules. A click opens the job's (or the
 * experiment's) view.
 */

import { ReactWidget } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import React, { useState } from 'react';

import { ExperimentsModel, percentDone, progressText } from './experiments';
import { JobsModel } from './model';
import { ScheduleList, SchedulesModel } from './schedules';
import { counts, Filter, JobsState, visibleJobs, whereNow } from './state';
import { ExperimentInfo, JobSummary } from './types';

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
  openExperiment: (name: string) => void;
  runPipeline(): void;
  openTable(): void;
}

function ExperimentRow(props: { experiment: ExperimentInfo; open: (name: string) => void }): JSX.Element {
  const { experiment, open } = props;
  const broken = experiment.error !== null;
  return (
    <li
      className={`pop-JobRow pop-ExperimentRow ${broken ? 'pop-ExperimentRow-broken' : ''}`}
      data-experiment={experiment.name}
      title={broken ? experiment.error! : `${experiment.file}\nopen the comparison`}
      tabIndex={0}
      onClick={() => !broken && open(experiment.name)}
      onKeyDown={event => {
        if (!broken && (event.key === 'Enter' || event.key === ' ')) {
          event.preventDefault();
          open(experiment.name);
        }
      }}
    >
      <div className="pop-JobRow-top">
        <span className="pop-JobRow-name">{experiment.name}</span>
        <span className="pop-JobRow-meta">{experiment.pipeline ?? ''}</span>
      </div>
      {broken ? (
        <div className="pop-Message pop-Message-error">{experiment.error}</div>
      ) : (
        <>
          <div className="pop-JobRow-meta">
            <span>
              {experiment.variants.length} variants × {experiment.items ?? '?'} items
              {experiment.repeat > 1 ? ` × ${experiment.repeat}` : ''}
            </span>
            <span className="pop-ExperimentRow-progress">{progressText(experiment)}</span>
          </div>
          {experiment.variants.map(v => (
            <div
              key={v.name}
              className="pop-ExperimentRow-variant"
              title={`${v.name}: ${v.done} done, ${v.failed} failed, ${v.running} running of ${v.planned}`}
            >
              <span className="pop-ExperimentRow-variantName">{v.name}</span>
              <div className="pop-Progress" aria-label={`${v.name}: ${percentDone(v)}% done`}>
                <div
                  className={`pop-Progress-bar ${v.failed ? 'pop-Progress-failed' : ''}`}
                  style={{ width: `${percentDone(v)}%` }}
                />
              </div>
            </div>
          ))}
        </>
      )}
    </li>
  );
}

function ExperimentList(props: { experiments: ExperimentsModel; open: (name: string) => void }): JSX.Element | null {
  const { experiments, open } = props;
  if (experiments.list.length === 0 && !experiments.problem) {
    return null;
  }
  return (
    <details className="pop-Experiments" open>
      <summary>Experiments ({experiments.list.length})</summary>
      {experiments.problem && <div className="pop-Message pop-Message-error">{experiments.problem}</div>}
      <ul className="pop-JobList">
        {experiments.list.map(experiment => (
          <ExperimentRow key={experiment.name} experiment={experiment} open={open} />
        ))}
      </ul>
    </details>
  );
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

function PanelBody(props: {
  model: JobsModel;
  experiments: ExperimentsModel;
  schedules: SchedulesModel;
  state: JobsState;
  actions: PanelActions;
}): JSX.Element {
  const { model, experiments, schedules, state, actions } = props;
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
            <button
              className="jp-mod-styled"
              title="Fetch the jobs, experiments and schedules again"
              onClick={() => void Promise.all([model.refresh(), experiments.refresh(), schedules.refresh()])}
            >
              ↻
            </button>
            <button
              className="jp-mod-styled pop-TableButton"
              title="Every job in a sortable table (created, started, ended, duration, cost), archived ones too"
              onClick={() => actions.openTable()}
            >
              Table
            </button>
          </div>
          <ExperimentList experiments={experiments} open={actions.openExperiment} />
          <ScheduleList model={schedules} openJob={actions.openJob} />
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
              placeholder="search"
              title="search the jobs' id, name, pipeline, task and error"
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
    readonly experiments: ExperimentsModel,
    readonly schedules: SchedulesModel,
    readonly actions: PanelActions
  ) {
    super();
    this.id = 'pop-pipelines';
    this.addClass('pop-Panel');
    this.title.caption = 'Pipelines (pop-nb jobs)';
    // every change re-renders from the model's state as it is then: nothing depends on when React
    // mounts relative to the first page and the stream's first events
    model.changed.connect(() => this.update(), this);
    experiments.changed.connect(() => this.update(), this);
    schedules.changed.connect(() => this.update(), this);
  }

  /** News the user has not seen: counted on the sidebar icon until the panel is shown. */
  noticed(): void {
    if (this.isVisible) {
      return;
    }
    this._unseen += 1;
    this.title.className = 'pop-has-news';
    this.title.dataset = { ...this.title.dataset, 'pop-unseen': String(this._unseen) };
    this.title.caption = `Pipelines (pop-nb jobs): ${this._unseen} new`;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._unseen = 0;
    this.title.className = '';
    const rest = { ...this.title.dataset }; // Lab keeps the tab's data-id here: only ours goes
    delete rest['pop-unseen'];
    this.title.dataset = rest;
    this.title.caption = 'Pipelines (pop-nb jobs)';
  }

  private _unseen = 0;

  render(): JSX.Element {
    return (
      <PanelBody
        model={this.model}
        experiments={this.experiments}
        schedules={this.schedules}
        state={this.model.state}
        actions={this.actions}
      />
    );
  }
}
