/**
 * Every job as a table in the main area (the panel is the short list): sortable columns (created,
 * started, ended, duration, cost, state, name, pipeline; sorted by the server, which pages), the live or
 * the archived jobs, a filter, and a click that opens the job's view. It refetches a second after the
 * event stream says a job changed.
 */

import { ReactWidget } from '@jupyterlab/apputils';
import React, { useEffect, useReducer, useState } from 'react';

import { PopAPI } from './api';
import { JobsModel } from './model';
import { reasonText } from './reason';
import { nextSort, took, when } from './state';
import { JobPage } from './types';

const PAGE = 100;

/** The columns, each with the server's sort key (null: not sortable). */
const COLUMNS: [string, string | null][] = [
  ['Job', 'name'],
  ['Pipeline', 'pipeline'],
  ['State', 'state'],
  ['Created', 'created'],
  ['Started', 'started'],
  ['Ended', 'ended'],
  ['Duration', 'duration'],
  ['Cost', 'cost']
];

export interface JobsTableOptions {
  api: PopAPI;
  model: JobsModel;
  openJob: (id: string) => void;
}

function Table(props: { options: JobsTableOptions }): JSX.Element {
  const { api, model, openJob } = props.options;
  const [sort, setSort] = useState('-created');
  const [archived, setArchived] = useState(false);
  const [search, setSearch] = useState('');
  const [page, setPage] = useState<JobPage | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [version, bump] = useReducer((n: number) => n + 1, 0);

  useEffect(() => {
    let live = true;
    api.jobs({ sort, search, archived: archived ? 1 : undefined, limit: PAGE }).then(
      found => live && (setPage(found), setProblem(null)),
      (reason: unknown) => live && setProblem(reasonText(reason))
    );
    return () => {
      live = false;
    };
  }, [sort, archived, search, version]);

  useEffect(() => {
    let timer: number | null = null;
    const changed = () => {
      if (timer === null) {
        timer = window.setTimeout(() => ((timer = null), bump()), 1000);
      }
    };
    model.jobChanged.connect(changed);
    return () => {
      model.jobChanged.disconnect(changed);
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    };
  }, []);

  return (
    <div className="pop-JobsTable-body">
      <div className="pop-JobsTable-bar">
        <h2>{archived ? 'Archived jobs' : 'Jobs'}</h2>
        <input
          className="jp-mod-styled"
          placeholder="id or name contains…"
          value={search}
          onChange={event => setSearch(event.target.value)}
        />
        <label>
          <input type="checkbox" checked={archived} onChange={event => setArchived(event.target.checked)} /> archived
        </label>
        <span className="pop-JobsTable-count">
          {page ? `${page.jobs.length} of ${page.total}` : ''}
          {page && page.total > page.jobs.length ? ` (the first ${PAGE}, as sorted)` : ''}
        </span>
      </div>
      {problem && <div className="pop-Message pop-Message-error">{problem}</div>}
      <table className="pop-JobsTable-table">
        <thead>
          <tr>
            {COLUMNS.map(([label, key]) => {
              const active = key !== null && sort.replace('-', '') === key;
              return (
                <th
                  key={label}
                  data-sort={key ?? undefined}
                  className={active ? 'pop-JobsTable-sorted' : undefined}
                  aria-sort={active ? (sort.startsWith('-') ? 'descending' : 'ascending') : undefined}
                  onClick={() => key && setSort(nextSort(sort, key))}
                  title={key ? 'sort by this column (again: the other way)' : undefined}
                >
                  {label}
                  {active ? (sort.startsWith('-') ? ' ▼' : ' ▲') : ''}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {(page?.jobs ?? []).map(job => (
            <tr key={job.id} data-job={job.id} onClick={() => openJob(job.id)} tabIndex={0}>
              <td title={job.id}>{job.name ?? job.id}</td>
              <td>{job.pipeline}</td>
              <td>
                <span className={`pop-Badge pop-state-${job.state}`}>{job.state}</span>
              </td>
              <td>{when(job.created_at)}</td>
              <td>{when(job.started_at)}</td>
              <td>{when(job.ended_at)}</td>
              <td className="pop-JobsTable-num">{took(job)}</td>
              <td className="pop-JobsTable-num">{job.cost}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page && page.jobs.length === 0 && <div className="pop-Message">No jobs here.</div>}
    </div>
  );
}

export class JobsTable extends ReactWidget {
  constructor(readonly options: JobsTableOptions) {
    super();
    this.addClass('pop-JobsTable');
    this.id = 'pop-jobs-table';
    this.title.label = 'pop-nb jobs';
    this.title.closable = true;
  }

  render(): JSX.Element {
    return <Table options={this.options} />;
  }
}
