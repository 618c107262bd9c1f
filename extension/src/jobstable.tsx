/**
 * Every job as a table in the main area (the panel is the short list): sortable columns (created,
 * started, ended, duration, cost, state, name, pipeline; sorted by the server, which pages), the live or
 * the archived jobs, a filter, and a click that opens the job's view. It scrolls through all of them,
 * however many: only the rows in view are drawn, and their pages are asked of the server as they come
 * into view. It asks again for what is in view a second after the event stream says a job changed.
 */

import { ReactWidget } from '@jupyterlab/apputils';
import React, { useEffect, useLayoutEffect, useReducer, useRef, useState } from 'react';

import { PopAPI } from './api';
import { JobsModel } from './model';
import { reasonText } from './reason';
import { nextSort, pagesOf, rowWindow, took, when } from './state';
import { JobSummary } from './types';

const PAGE = 100;
const ROW = 26; // px: a body row's height, as base.css sets it (.pop-JobsTable-table tbody tr)

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
  const [total, setTotal] = useState<number | null>(null);
  const [pages, setPages] = useState<Map<number, JobSummary[]>>(new Map());
  const [view, setView] = useState<[number, number]>([0, 60]);
  const [problem, setProblem] = useState<string | null>(null);
  // a new question to the server (another sort, filter or place, or jobs changed): answers to an
  // older one are dropped, and the pages in view are asked again
  const [generation, bump] = useReducer((n: number) => n + 1, 0);
  const current = useRef({ generation, sort, search, archived });
  current.current = { generation, sort, search, archived };
  const asked = useRef({ generation: -1, pages: new Set<number>() }); // the pages asked this generation
  const scroller = useRef<HTMLDivElement>(null);

  const measure = () => {
    const el = scroller.current;
    if (el) {
      setView(rowWindow(el.scrollTop, el.clientHeight, ROW, Number.MAX_SAFE_INTEGER));
    }
  };

  // another sort, filter or place: the rows shown stay until the first answer replaces them all (no
  // empty table in between); later answers of the same question add their pages
  const replacing = useRef(false);
  useLayoutEffect(() => {
    replacing.current = true;
    if (scroller.current) {
      scroller.current.scrollTop = 0;
    }
    measure();
    bump();
  }, [sort, archived, search]);

  useEffect(() => {
    const el = scroller.current;
    const observer = el ? new ResizeObserver(measure) : null;
    if (el && observer) {
      observer.observe(el);
    }
    let timer: number | null = null;
    const changed = () => {
      if (timer === null) {
        timer = window.setTimeout(() => {
          timer = null;
          bump(); // ask again for what is in view; the rows drawn stay until the answers come
        }, 1000);
      }
    };
    model.jobChanged.connect(changed);
    return () => {
      observer?.disconnect();
      model.jobChanged.disconnect(changed);
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    };
  }, []);

  useEffect(() => {
    if (asked.current.generation !== generation) {
      asked.current = { generation, pages: new Set() };
    }
    const wanted = total === null ? [0] : pagesOf(view[0], Math.min(view[1], total), PAGE);
    for (const page of wanted) {
      if (asked.current.pages.has(page)) {
        continue;
      }
      asked.current.pages.add(page);
      const asking = current.current;
      api
        .jobs({
          sort: asking.sort,
          search: asking.search,
          archived: asking.archived ? 1 : undefined,
          limit: PAGE,
          offset: page * PAGE
        })
        .then(
          found => {
            if (asking.generation === current.current.generation) {
              const fresh = replacing.current;
              replacing.current = false;
              setTotal(found.total);
              setPages(old => (fresh ? new Map<number, JobSummary[]>() : new Map(old)).set(page, found.jobs));
              setProblem(null);
            }
          },
          (reason: unknown) => {
            if (asking.generation === current.current.generation) {
              asked.current.pages.delete(page); // asked again when it next comes into view
              setProblem(reasonText(reason));
            }
          }
        );
    }
  }, [view, generation, total]);

  const count = total ?? 0;
  const first = Math.min(view[0], count);
  const end = Math.min(view[1], count);
  const rows: JSX.Element[] = [];
  for (let i = first; i < end; i++) {
    const job = pages.get(Math.floor(i / PAGE))?.[i % PAGE];
    rows.push(
      job ? (
        <tr key={job.id} data-job={job.id} data-row={i} onClick={() => openJob(job.id)} tabIndex={0}>
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
      ) : (
        <tr key={`row-${i}`} className="pop-JobsTable-pending" data-row={i}>
          <td colSpan={COLUMNS.length}>…</td>
        </tr>
      )
    );
  }

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
        <span className="pop-JobsTable-count">{total === null ? '' : `${total} job${total === 1 ? '' : 's'}`}</span>
      </div>
      {problem && <div className="pop-Message pop-Message-error">{problem}</div>}
      <div className="pop-JobsTable-scroll" ref={scroller} onScroll={measure}>
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
            {first > 0 && <Spacer rows={first} />}
            {rows}
            {end < count && <Spacer rows={count - end} />}
          </tbody>
        </table>
        {total === 0 && <div className="pop-Message">No jobs here.</div>}
      </div>
    </div>
  );
}

/** The height of rows not drawn, so the scroll bar is that of the whole list. */
function Spacer(props: { rows: number }): JSX.Element {
  return (
    <tr className="pop-JobsTable-spacer" aria-hidden>
      <td colSpan={COLUMNS.length} style={{ height: props.rows * ROW }} />
    </tr>
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
