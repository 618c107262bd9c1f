/**
 * The jobs the panel shows, kept live: one page from `GET /pop/api/jobs`, then `/pop/api/events`.
 * Job views listen to `jobChanged` rather than opening streams of their own.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { followEvents, PopAPI, PopApiError } from './api';
import { initialState, JobsState, Notice, noticeOf, withEvent, withPage } from './state';
import { BusData } from './types';

export class JobsModel {
  constructor(
    readonly api: PopAPI,
    limit = 200
  ) {
    this._state = initialState(limit);
  }

  get state(): JobsState {
    return this._state;
  }

  /** Emitted whenever the state changes. */
  get changed(): ISignal<this, JobsState> {
    return this._changed;
  }

  /** Emitted with a job's id when an event about it arrives (or with null after a reset). */
  get jobChanged(): ISignal<this, string | null> {
    return this._jobChanged;
  }

  /** Emitted when a job fails, is cancelled, stops at a gate or finishes, as it happens. */
  get noticed(): ISignal<this, Notice> {
    return this._noticed;
  }

  /** Load the newest jobs and follow the event stream until `dispose()`. */
  start(): void {
    if (this._abort) {
      return;
    }
    this._abort = new AbortController();
    void this.refresh();
    void followEvents(
      this.api,
      {
        onOpen: () => {
          const wasDown = this._state.connection !== 'live';
          this._set({ ...this._state, connection: 'live', message: null });
          if (wasDown && this._loadedOnce) {
            void this.refresh(); // events while we were away may be more than the server still holds
          }
        },
        onEvent: (name, data: BusData) => this._event(name, data),
        onDrop: error => {
          if (error && (error.failure === 'missing' || error.failure === 'forbidden')) {
            this._set({ ...this._state, connection: error.failure, message: error.message });
          } else if (!this._abort?.signal.aborted) {
            this._set({ ...this._state, connection: 'reconnecting', message: error?.message ?? null });
          }
        }
      },
      this._abort.signal
    );
  }

  /** Fetch the newest page of jobs again (after a reset, a reconnection, or when asked). */
  async refresh(): Promise<void> {
    try {
      const page = await this.api.jobs({ limit: this._state.limit });
      this._loadedOnce = true;
      this._set(withPage(this._state, page));
    } catch (reason) {
      const error = reason as PopApiError;
      this._set({
        ...this._state,
        connection: error.failure === 'missing' || error.failure === 'forbidden' ? error.failure : 'error',
        message: error.message ?? String(reason)
      });
    }
  }

  /**
   * This client changed a job in a way the event stream does not follow (archived, restored, deleted:
   * moves outside current/): the list again, and a word to whoever shows the job.
   */
  async touched(id: string): Promise<void> {
    await this.refresh();
    this._jobChanged.emit(id);
  }

  /** Show more of the older jobs. */
  async showMore(by = 200): Promise<void> {
    this._state = { ...this._state, limit: this._state.limit + by };
    await this.refresh();
  }

  dispose(): void {
    this._abort?.abort();
    this._abort = null;
    Signal.clearData(this);
  }

  private _event(name: string, data: BusData): void {
    if (name === 'heartbeat') {
      return;
    }
    const before = data.job ? this._state.jobs[data.job.id] : undefined;
    const folded = withEvent(this._state, name, data);
    if (folded.state !== this._state) {
      this._set(folded.state);
      const notice = data.job ? noticeOf(before, data.job) : null;
      if (notice) {
        this._noticed.emit(notice);
      }
    }
    if (folded.refetch) {
      void this.refresh();
    }
    if (folded.jobId || folded.refetch) {
      this._jobChanged.emit(folded.jobId);
    }
  }

  private _set(state: JobsState): void {
    this._state = state;
    this._changed.emit(state);
  }

  private _state: JobsState;
  private _loadedOnce = false;
  private _abort: AbortController | null = null;
  private _changed = new Signal<this, JobsState>(this);
  private _jobChanged = new Signal<this, string | null>(this);
  private _noticed = new Signal<this, Notice>(this);
}
