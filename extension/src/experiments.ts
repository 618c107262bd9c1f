/**
 * The experiments the Pipelines panel lists, kept live: `GET /pop/api/experiments` again shortly after
 * a job of an experiment moves (its name is `<experiment>/<variant>/<item>#<repeat>`), never more than
 * once a second. Open experiment views listen to `experimentChanged`.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { PopAPI } from './api';
import { JobsModel } from './model';
import { reasonText } from './reason';
import { ExperimentInfo, VariantProgress } from './types';

const JOB_NAME = /^([A-Za-z0-9][A-Za-z0-9_-]{0,47})\/[^/]+\/.*#\d+$/;

/** The experiment a job belongs to, from its name (null: not an experiment's job). */
export function experimentOf(jobName: string | null | undefined): string | null {
  const match = jobName ? JOB_NAME.exec(jobName) : null;
  return match ? match[1] : null;
}

/** How far a variant has got, as the panel's bar shows it (0-100). */
export function percentDone(v: VariantProgress): number {
  if (v.planned <= 0) {
    return 0;
  }
  return Math.min(100, Math.round((100 * (v.done + v.failed)) / v.planned));
}

/** An experiment's progress in a few words: "40/60 done · 2 failed · 3 running". */
export function progressText(e: ExperimentInfo): string {
  const sum = (key: 'planned' | 'done' | 'failed' | 'running') => e.variants.reduce((n, v) => n + v[key], 0);
  const parts = [`${sum('done')}/${sum('planned')} done`];
  if (sum('failed')) {
    parts.push(`${sum('failed')} failed`);
  }
  if (sum('running')) {
    parts.push(`${sum('running')} running`);
  }
  return parts.join(' · ');
}

/** A file of the data folder (as the server names it) as Lab names it; null: Lab cannot reach it. */
export function dataFile(labData: string | null, relative: string): string | null {
  if (labData === null) {
    return null;
  }
  return labData ? `${labData}/${relative}` : relative;
}

/** A score (0..1 for the built-in scorers and judges) as shown in a table. */
export function scoreText(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : value.toFixed(2);
}

/** Dollars with enough places that a cheap model's cost is not 0.00. */
export function usd(value: number): string {
  if (value === 0) {
    return '$0';
  }
  return value >= 0.01 ? `$${value.toFixed(4)}` : `$${value.toFixed(6)}`;
}

/** A cell's background for a score in 0..1: red through amber to green; none when there is none. */
export function heat(value: number | null | undefined): string | undefined {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return undefined;
  }
  const clamped = Math.max(0, Math.min(1, value));
  return `hsla(${Math.round(clamped * 120)}, 60%, 45%, 0.35)`;
}

export class ExperimentsModel {
  constructor(
    readonly api: PopAPI,
    readonly jobs: JobsModel
  ) {
    jobs.jobChanged.connect((_, id) => this._onJob(id), this);
  }

  get list(): ExperimentInfo[] {
    return this._list;
  }

  /** Why the list could not be fetched (null: it was). */
  get problem(): string | null {
    return this._problem;
  }

  get changed(): ISignal<this, ExperimentInfo[]> {
    return this._changed;
  }

  /** Emitted with an experiment's name when one of its jobs moved (null: anything may have). */
  get experimentChanged(): ISignal<this, string | null> {
    return this._experimentChanged;
  }

  async refresh(): Promise<void> {
    try {
      this._list = await this.api.experiments();
      this._problem = null;
    } catch (reason) {
      this._problem = reasonText(reason);
    }
    this._changed.emit(this._list);
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    Signal.clearData(this);
  }

  private _onJob(id: string | null): void {
    const name = id === null ? null : experimentOf(this.jobs.state.jobs[id]?.name);
    if (id !== null && name === null) {
      return;
    }
    this._touched.add(name); // null: a reset, after which any experiment may have changed
    if (this._timer === null) {
      this._timer = window.setTimeout(() => {
        this._timer = null;
        const touched = this._touched.has(null) ? [null] : [...this._touched];
        this._touched.clear();
        void this.refresh();
        for (const each of touched) {
          this._experimentChanged.emit(each);
        }
      }, 1000);
    }
  }

  private _list: ExperimentInfo[] = [];
  private _problem: string | null = null;
  private _timer: number | null = null;
  private _touched = new Set<string | null>();
  private _changed = new Signal<this, ExperimentInfo[]>(this);
  private _experimentChanged = new Signal<this, string | null>(this);
}
