/**
 * The client of the pop-nb server extension (`/pop/api/...`). Requests go through Jupyter's
 * `ServerConnection`, so they carry the user's token and the XSRF header Jupyter asks of a POST.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { SSEParser } from './sse';
import {
  BusData,
  ErrorBody,
  ExperimentDetail,
  ExperimentInfo,
  ExperimentItem,
  CopyMade,
  JobDeleted,
  JobDetail,
  JobFile,
  LogChunk,
  StageSnapshot,
  JobPage,
  JobSummary,
  PipelineInfo,
  ScheduleView
} from './types';

/** Why a request failed, in the terms the panel shows. */
export type Failure = 'missing' | 'forbidden' | 'invalid' | 'not_found' | 'conflict' | 'error';

export class PopApiError extends Error {
  constructor(
    readonly status: number,
    readonly failure: Failure,
    message: string
  ) {
    super(message);
    this.name = 'PopApiError';
  }
}

export const MISSING_MESSAGE =
  'This Jupyter server has no pop-nb extension. Install pop-nb in the environment that runs ' +
  '`jupyter lab` (pip install pop-nb), check `jupyter server extension list` shows pop_nb enabled, ' +
  'and restart JupyterLab.';
export const FORBIDDEN_MESSAGE =
  "You are not allowed to use pop-nb on this server (Jupyter's authorizer refused the 'pop' resource).";

function messageOf(failure: Failure, otherwise: string): string {
  return failure === 'missing' ? MISSING_MESSAGE : failure === 'forbidden' ? FORBIDDEN_MESSAGE : otherwise;
}

function failureOf(status: number, body: { error?: string } | null): Failure {
  if (status === 403) {
    return 'forbidden';
  }
  if (status === 404) {
    // our handlers answer a missing job with JSON; a bare 404 means no route: no extension
    return body?.error ? 'not_found' : 'missing';
  }
  if (status === 400 || status === 422) {
    return 'invalid';
  }
  if (status === 409) {
    return 'conflict';
  }
  return 'error';
}

export interface JobQuery {
  state?: string;
  pipeline?: string;
  search?: string;
  offset?: number;
  limit?: number;
  /** created, started, ended, duration, cost, state, name, pipeline; a leading '-' for descending */
  sort?: string;
  /** 1: the archived jobs instead of the live ones */
  archived?: number;
}

export class PopAPI {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  url(path: string, query: Record<string, string | number | undefined> = {}): string {
    const params = Object.entries(query)
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    const url = URLExt.join(this.settings.baseUrl, 'pop', 'api', path);
    return params ? `${url}?${params}` : url;
  }

  async request<T>(
    path: string,
    init: RequestInit = {},
    query: Record<string, string | number | undefined> = {}
  ): Promise<T> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(this.url(path, query), init, this.settings);
    } catch (reason) {
      throw new PopApiError(0, 'error', `The Jupyter server cannot be reached: ${String(reason)}`);
    }
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const error = (typeof body === 'object' ? body : null) as Partial<ErrorBody> | null;
      const failure = failureOf(response.status, error);
      const message = messageOf(failure, error?.message ?? `${response.status} ${response.statusText}`);
      throw new PopApiError(response.status, failure, message);
    }
    return body as T;
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>(path, { method: 'POST', body: JSON.stringify(body) });
  }

  pipelines(): Promise<PipelineInfo[]> {
    return this.request<PipelineInfo[]>('pipelines');
  }

  jobs(query: JobQuery = {}): Promise<JobPage> {
    return this.request<JobPage>('jobs', {}, { ...query });
  }

  job(id: string): Promise<JobDetail> {
    return this.request<JobDetail>(`jobs/${encodeURIComponent(id)}`);
  }

  /** Check a seed against its pipeline (its seed_schema included) without starting anything. */
  check(pipeline: string, seed: Record<string, unknown>): Promise<{ ok: boolean }> {
    return this.post(`pipelines/${encodeURIComponent(pipeline)}/check`, { seed });
  }

  submit(pipeline: string, seed: Record<string, unknown>): Promise<JobSummary> {
    return this.post<JobSummary>('jobs', { pipeline, seed });
  }

  /** Run it again from where it stopped (or `fromTask`), with a new budget if `budgetUsd` is given. */
  resume(id: string, fromTask?: string, budgetUsd?: number): Promise<JobSummary> {
    return this.post(`jobs/${encodeURIComponent(id)}/resume`, {
      ...(fromTask ? { from_task: fromTask } : {}),
      ...(budgetUsd !== undefined ? { budget_usd: budgetUsd } : {})
    });
  }

  cancel(id: string): Promise<JobSummary> {
    return this.post(`jobs/${encodeURIComponent(id)}/cancel`, {});
  }

  /** Let it go on past its gate; `outputs` (task -> value) is the approver's edit of a waiting output. */
  approve(id: string, outputs?: Record<string, unknown>): Promise<JobSummary> {
    return this.post(`jobs/${encodeURIComponent(id)}/approve`, outputs ? { outputs } : {});
  }

  reject(id: string, reason: string): Promise<JobSummary> {
    return this.post(`jobs/${encodeURIComponent(id)}/reject`, reason ? { reason } : {});
  }

  /** Move an ended job out of the way (archive/); it stays readable. */
  archive(id: string): Promise<JobSummary> {
    return this.post(`jobs/${encodeURIComponent(id)}/archive`, {});
  }

  restore(id: string): Promise<JobSummary> {
    return this.post(`jobs/${encodeURIComponent(id)}/restore`, {});
  }

  /** Remove an ended job's folder for good. */
  remove(id: string): Promise<JobDeleted> {
    return this.request<JobDeleted>(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** The URL of the job's folder as one zip. */
  zipUrl(id: string): string {
    return this.url(`jobs/${encodeURIComponent(id)}/zip`);
  }

  /** A file of the job (`path` relative to its folder), wherever the job is now, read-only. */
  file(id: string, path: string, content = true): Promise<JobFile> {
    return this.request<JobFile>(`jobs/${encodeURIComponent(id)}/file`, {}, { path, content: content ? 1 : 0 });
  }

  /** The URL of a job file's bytes (a download, an image a Markdown product links). */
  fileUrl(id: string, path: string): string {
    return this.url(`jobs/${encodeURIComponent(id)}/file`, { path, raw: 1 });
  }

  /** An editable copy of one of the job's notebooks, under `scratch/<id>/` at the project root. */
  copy(id: string, path: string): Promise<CopyMade> {
    return this.post<CopyMade>(`jobs/${encodeURIComponent(id)}/copy`, { path });
  }

  /** A stage's log from byte `offset` (whole lines while it runs). */
  log(id: string, task: string, stage: string, refinement: number, offset: number): Promise<LogChunk> {
    return this.request<LogChunk>(`jobs/${encodeURIComponent(id)}/log`, {}, { task, stage, refinement, offset });
  }

  /** Have a running stage write its notebook as it stands. */
  snapshot(id: string, task: string, stage: string, refinement: number): Promise<StageSnapshot> {
    return this.post<StageSnapshot>(`jobs/${encodeURIComponent(id)}/snapshot`, { task, stage, refinement });
  }

  /** Every schedule: its next slots and its last outcomes. */
  schedules(): Promise<ScheduleView[]> {
    return this.request<ScheduleView[]>('schedules');
  }

  /** Pause (or resume) a schedule; a resume owes nothing from the pause. */
  pauseSchedule(name: string, paused: boolean): Promise<ScheduleView> {
    return this.post<ScheduleView>(`schedules/${encodeURIComponent(name)}/${paused ? 'pause' : 'resume'}`, {});
  }

  experiments(): Promise<ExperimentInfo[]> {
    return this.request<ExperimentInfo[]>('experiments');
  }

  /** The comparison, graded with what the server keeps: a judge is never asked (see `score`). */
  experiment(name: string): Promise<ExperimentDetail> {
    return this.request<ExperimentDetail>(`experiments/${encodeURIComponent(name)}`);
  }

  /** Ask for the grades not kept yet (a judge's calls are paid for), then compare. */
  score(name: string): Promise<ExperimentDetail> {
    return this.post<ExperimentDetail>(`experiments/${encodeURIComponent(name)}/score`, {});
  }

  experimentItem(name: string, item: string, repeat = 0): Promise<ExperimentItem> {
    return this.request<ExperimentItem>(`experiments/${encodeURIComponent(name)}/item`, {}, { id: item, repeat });
  }
}

/** What the event stream reports besides its events. */
export interface StreamCallbacks {
  onEvent(name: string, data: BusData): void;
  onOpen(): void;
  onDrop(error: PopApiError | null): void;
}

/**
 * Follow `/pop/api/events` until `signal` aborts: reconnect after a drop (with the server's `retry:`
 * delay, backing off to 30 s), sending `Last-Event-ID` so nothing is missed. A refusal (no extension,
 * not allowed) ends it.
 */
export async function followEvents(api: PopAPI, callbacks: StreamCallbacks, signal: AbortSignal): Promise<void> {
  const parser = new SSEParser();
  let failures = 0;
  while (!signal.aborted) {
    let error: PopApiError | null = null;
    try {
      const headers: Record<string, string> = { Accept: 'text/event-stream' };
      if (parser.lastEventId) {
        headers['Last-Event-ID'] = parser.lastEventId;
      }
      const response = await ServerConnection.makeRequest(api.url('events'), { headers, signal }, api.settings);
      if (!response.ok || !response.body) {
        const failure = failureOf(response.status, null);
        error = new PopApiError(response.status, failure, messageOf(failure, `${response.status}`));
        if (failure === 'missing' || failure === 'forbidden') {
          callbacks.onDrop(error);
          return;
        }
      } else {
        failures = 0;
        callbacks.onOpen();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) {
            break;
          }
          for (const message of parser.feed(value)) {
            let data: BusData = {};
            try {
              data = JSON.parse(message.data) as BusData;
            } catch {
              continue;
            }
            callbacks.onEvent(message.event, data);
          }
        }
      }
    } catch (reason) {
      if (signal.aborted) {
        return;
      }
      error = new PopApiError(0, 'error', String(reason));
    }
    callbacks.onDrop(error);
    failures += 1;
    const wait = Math.min(30_000, (parser.retryMs ?? 2000) * 2 ** Math.min(failures - 1, 4));
    await new Promise(resolve => setTimeout(resolve, wait));
  }
}
