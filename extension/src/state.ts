/**
 * The Pipelines panel's state, as pure functions over plain data: a page of jobs from
 * `GET /pop/api/jobs`, then the event stream's job summaries folded in as they come.
 */

import { BusData, JobDetail, JobPage, JobSummary } from './types';

/** Where the panel's connection to the server stands. */
export type Connection =
  | 'connecting'
  | 'live'
  | 'reconnecting'
  | 'missing' // the server has no pop-nb extension
  | 'forbidden' // the user may not use it
  | 'error';

export interface JobsState {
  jobs: Record<string, JobSummary>;
  /** Jobs in all on the server that match the filters (the list may hold fewer). */
  total: number;
  /** How many of the newest jobs the panel asked for. */
  limit: number;
  dataDir: string | null;
  connection: Connection;
  message: string | null;
}

export interface Filter {
  /** A job state (done, failed, running, ...) or an activity (running, queued, waiting, ended). */
  state?: string;
  search?: string;
}

export function initialState(limit = 200): JobsState {
  return { jobs: {}, total: 0, limit, dataDir: null, connection: 'connecting', message: null };
}

/** A fresh page replaces what was known (it is the server's truth at the moment it was read). */
export function withPage(state: JobsState, page: JobPage): JobsState {
  const jobs: Record<string, JobSummary> = {};
  for (const job of page.jobs) {
    jobs[job.id] = job;
  }
  return { ...state, jobs, total: page.total, dataDir: page.data_dir };
}

/** What to do with one event of the stream. */
export interface Folded {
  state: JobsState;
  /** The event says the client missed something: fetch the list again. */
  refetch: boolean;
  /** The id of the job the event was about, if any. */
  jobId: string | null;
}

/** Fold one event (its SSE name and parsed data) into the state. */
export function withEvent(state: JobsState, name: string, data: BusData): Folded {
  if (name === 'reset') {
    return { state, refetch: true, jobId: null };
  }
  const job = data.job;
  if (!job || typeof job.id !== 'string') {
    return { state, refetch: false, jobId: null };
  }
  const known = state.jobs[job.id];
  if (known && known.updated_at > job.updated_at) {
    return { state, refetch: false, jobId: job.id }; // older news than the page we hold
  }
  const total = known ? state.total : state.total + 1;
  return { state: { ...state, jobs: { ...state.jobs, [job.id]: job }, total }, refetch: false, jobId: job.id };
}

const ACTIVITY_ORDER: Record<string, number> = { running: 0, waiting: 1, queued: 2, ended: 3 };

/** The jobs to show: open ones first (running, waiting at a gate, queued), then the rest, newest first. */
export function visibleJobs(state: JobsState, filter: Filter = {}): JobSummary[] {
  const needle = (filter.search ?? '').trim().toLowerCase();
  const wanted = filter.state ?? '';
  const shown = Object.values(state.jobs).filter(job => {
    if (wanted && job.state !== wanted && job.activity !== wanted) {
      return false;
    }
    if (!needle) {
      return true;
    }
    return [job.id, job.pipeline, job.name ?? '', job.current_task ?? '', job.error?.message ?? ''].some(text =>
      text.toLowerCase().includes(needle)
    );
  });
  return shown.sort(
    (a, b) =>
      (ACTIVITY_ORDER[a.activity] ?? 9) - (ACTIVITY_ORDER[b.activity] ?? 9) ||
      (b.created_at < a.created_at ? -1 : b.created_at > a.created_at ? 1 : 0) ||
      (a.id < b.id ? -1 : 1)
  );
}

/** How many jobs of each activity the panel holds (for its header). */
export function counts(state: JobsState): Record<string, number> {
  const out: Record<string, number> = { running: 0, waiting: 0, queued: 0, ended: 0 };
  for (const job of Object.values(state.jobs)) {
    out[job.activity] = (out[job.activity] ?? 0) + 1;
  }
  return out;
}

/** What a job row says it is doing now. */
/** Which machine (and Celery worker) ran the job last: "ran on vm", "ran on celery worker w1@vm". */
export function ranOn(job: JobSummary): string {
  if (job.worker) {
    return `ran on ${job.executor ?? 'worker'} worker ${job.worker}`;
  }
  return job.host ? `ran on ${job.host}` : '';
}

export function whereNow(job: JobSummary): string {
  if (job.activity === 'waiting' && job.waiting_gates.length) {
    return `waiting for approval: ${job.waiting_gates.join(', ')}`;
  }
  if (job.current_task) {
    return job.current_stage ? `${job.current_task} / ${job.current_stage}` : job.current_task;
  }
  if (job.error) {
    const at = [job.error.task, job.error.stage].filter(Boolean).join(' / ');
    if (job.error.type === 'Cancelled') {
      return at ? `cancelled in ${at}` : 'cancelled';
    }
    return at ? `${at}: ${job.error.type}` : job.error.type;
  }
  return '';
}

/** Which buttons a job's view offers, from what the job is doing (as the dashboard decides). */
/** The buttons a job gets: what the server says it allows (never re-derived here). */
export function actionsFor(job: JobSummary): {
  resume: boolean;
  cancel: boolean;
  approve: boolean;
  archive: boolean;
  restore: boolean;
  delete: boolean;
} {
  const allowed = job.actions ?? [];
  return {
    cancel: allowed.includes('cancel'),
    resume: allowed.includes('resume'),
    approve: allowed.includes('approve'),
    archive: allowed.includes('archive'),
    restore: allowed.includes('restore'),
    delete: allowed.includes('delete')
  };
}

/** A tab's label: the job's name and the end of its id, so two jobs of one pipeline tell apart. */
export function tabLabel(id: string, name: string | null | undefined): string {
  const short = id.length > 14 ? `…${id.slice(-6)}` : id;
  if (!name) {
    return id.length > 28 ? `${id.slice(0, 20)}${short}` : id;
  }
  const title = name.length > 24 ? `${name.slice(0, 23)}…` : name;
  return `${title} (${short})`;
}

/** What a user hears about when a job moves. */
export type NoticeKind = 'failed' | 'cancelled' | 'waiting' | 'done';

export interface Notice {
  kind: NoticeKind;
  job: JobSummary;
  text: string;
}

/**
 * The news in a job's change from `before` (undefined: not known until now) to `after`: it failed, was
 * cancelled, stopped at a gate, or finished. Nothing when it was already so: a page read on load or
 * after a reconnection is the state of things, not news.
 */
export function noticeOf(before: JobSummary | undefined, after: JobSummary): Notice | null {
  const name = after.name || after.id;
  if (after.activity === 'waiting' && before?.activity !== 'waiting') {
    const gates = after.waiting_gates.join(', ');
    return { kind: 'waiting', job: after, text: `${name} waits for approval${gates ? `: ${gates}` : ''}` };
  }
  if (before?.state === after.state) {
    return null;
  }
  if (after.state === 'failed') {
    const what = after.error ? `: ${whereNow({ ...after, current_task: null, current_stage: null })}` : '';
    return { kind: 'failed', job: after, text: `${name} failed${what}` };
  }
  if (after.state === 'cancelled') {
    return { kind: 'cancelled', job: after, text: `${name} was cancelled` };
  }
  if (after.state === 'done') {
    return { kind: 'done', job: after, text: `${name} is done (${after.cost})` };
  }
  return null;
}

/**
 * The pipeline a file belongs to, from its path as Lab names it: `pipelines/<slug>/pipeline.yaml`, or a
 * notebook anywhere under `pipelines/<slug>/` (a task notebook). Null for any other file.
 */
export function pipelineOfPath(path: string): string | null {
  const parts = path.split('/');
  const at = parts.lastIndexOf('pipelines');
  if (at < 0 || parts.length < at + 3) {
    return null;
  }
  const slug = parts[at + 1];
  const rest = parts.slice(at + 2);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(slug) || rest.some(p => p.startsWith('.'))) {
    return null; // not a slug; a checkpoint copy under .ipynb_checkpoints/
  }
  const name = rest[rest.length - 1];
  return (rest.length === 1 && name === 'pipeline.yaml') || name.endsWith('.ipynb') ? slug : null;
}

/** "2026-12-05 08:01:34" from an ISO time (the local clock is not guessed: what the job wrote). */
export function when(iso: string | null | undefined): string {
  return iso ? iso.slice(0, 19).replace('T', ' ') : '';
}

/** How long a job ran, as people read it ("" when it has not both started and ended). */
export function took(job: Pick<JobSummary, 'started_at' | 'ended_at'>): string {
  if (!job.started_at || !job.ended_at) {
    return '';
  }
  const seconds = (Date.parse(job.ended_at) - Date.parse(job.started_at)) / 1000;
  if (!Number.isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes} min ${Math.round(seconds % 60)} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The sort after a click on a column: the same column flips its direction; a new one starts descending. */
export function nextSort(current: string, key: string): string {
  if (current === `-${key}`) {
    return key;
  }
  return `-${key}`;
}

/**
 * A job view's detail with what an event's summary says at once (state, progress, cost, actions, error),
 * before the detail is fetched again; a summary older than the detail, or of another job, changes
 * nothing.
 */
export function withSummary(detail: JobDetail, summary: JobSummary | undefined): JobDetail {
  if (!summary || summary.id !== detail.id || summary.updated_at < detail.updated_at) {
    return detail;
  }
  return { ...detail, ...summary };
}

/**
 * The rows a scrolled list of `total` rows of `rowHeight` px draws: [first, end), what is in view plus
 * `overscan` rows either side (so a short scroll shows rows already drawn).
 */
export function rowWindow(
  scrollTop: number,
  height: number,
  rowHeight: number,
  total: number,
  overscan = 20
): [number, number] {
  const top = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const first = Math.max(0, Math.min(top, total) - overscan);
  const end = Math.min(total, top + Math.ceil(Math.max(0, height) / rowHeight) + overscan);
  return [first, Math.max(first, end)];
}

/** The pages of `size` rows that hold rows [first, end). */
export function pagesOf(first: number, end: number, size: number): number[] {
  const pages: number[] = [];
  for (let page = Math.floor(first / size); page * size < end; page++) {
    pages.push(page);
  }
  return pages;
}
