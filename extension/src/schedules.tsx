/**
 * The project's schedules in the Pipelines panel: each one's next run, a pause or resume, and its last
 * slots (what each became: a job, a skip, a miss), kept live: fetched again shortly after a job of a
 * schedule (`<name>-<YYYYMMDDTHHMMSSZ>`) moves, and once a minute for the next run.
 */

import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import { PopAPI } from './api';
import { JobsModel } from './model';
import { reasonText } from './reason';
import { ScheduleView, SlotView } from './types';

const SLOT_JOB = /^([a-z0-9][a-z0-9-]{0,63})-\d{8}T\d{6}Z$/;

/** The schedule a job was made by, from its id (null: none). */
export function scheduleOf(jobId: string | null | undefined): string | null {
  const match = jobId ? SLOT_JOB.exec(jobId) : null;
  return match ? match[1] : null;
}

/** A slot's time as a reader wants it: its own zone's wall clock, "2026-12-05 06:00 +00:00". */
export function slotTime(iso: string): string {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?([+-]\d{2}:\d{2}|Z)?$/.exec(iso);
  return match ? `${match[1]} ${match[2]}${match[3] ? ` ${match[3] === 'Z' ? 'UTC' : match[3]}` : ''}` : iso;
}

/** What became of a slot, in a few words. */
export function outcomeText(slot: SlotView): string {
  if (slot.action === 'started' || slot.action === 'queued') {
    const where = slot.state ?? 'not found';
    return slot.action === 'queued' && slot.state === null ? 'queued' : where;
  }
  return slot.action;
}

export class SchedulesModel {
  constructor(
    readonly api: PopAPI,
    readonly jobs: JobsModel
  ) {
    jobs.jobChanged.connect((_, id) => this._onJob(id), this);
    this._clock = window.setInterval(() => void this.refresh(), 60_000);
  }

  get list(): ScheduleView[] {
    return this._list;
  }

  get problem(): string | null {
    return this._problem;
  }

  get changed(): ISignal<this, ScheduleView[]> {
    return this._changed;
  }

  async refresh(): Promise<void> {
    try {
      this._list = await this.api.schedules();
      this._problem = null;
    } catch (reason) {
      this._problem = reasonText(reason);
    }
    this._changed.emit(this._list);
  }

  async setPaused(name: string, paused: boolean): Promise<void> {
    try {
      const view = await this.api.pauseSchedule(name, paused);
      this._list = this._list.map(s => (s.name === name ? view : s));
      this._problem = null;
    } catch (reason) {
      this._problem = reasonText(reason);
    }
    this._changed.emit(this._list);
  }

  dispose(): void {
    window.clearInterval(this._clock);
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    Signal.clearData(this);
  }

  private _onJob(id: string | null): void {
    if (id !== null && scheduleOf(id) === null) {
      return;
    }
    if (this._timer === null) {
      this._timer = window.setTimeout(() => {
        this._timer = null;
        void this.refresh();
      }, 1000);
    }
  }

  private _list: ScheduleView[] = [];
  private _problem: string | null = null;
  private _timer: number | null = null;
  private _clock: number;
  private _changed = new Signal<this, ScheduleView[]>(this);
}

function ScheduleRow(props: {
  schedule: ScheduleView;
  model: SchedulesModel;
  openJob: (id: string) => void;
}): JSX.Element {
  const { schedule, model, openJob } = props;
  const state = schedule.problem ? 'broken' : schedule.paused ? 'paused' : 'active';
  return (
    <li className={`pop-JobRow pop-ScheduleRow pop-schedule-${state}`} data-schedule={schedule.name}>
      <div className="pop-JobRow-top">
        <span className="pop-JobRow-name" title={schedule.description || schedule.source}>
          {schedule.name}
        </span>
        <span className="pop-Badge">{state}</span>
      </div>
      <div className="pop-JobRow-meta">
        <span>{schedule.pipeline}</span>
        <code title={`overlap ${schedule.overlap}, catch_up ${schedule.catch_up}`}>
          {schedule.cron} {schedule.timezone}
        </code>
      </div>
      {schedule.problem ? (
        <div className="pop-Message pop-Message-error">{schedule.problem}</div>
      ) : (
        <div className="pop-JobRow-meta">
          <span className="pop-ScheduleRow-next">
            {schedule.paused ? 'paused' : schedule.next.length ? `next ${slotTime(schedule.next[0])}` : 'no next run'}
          </span>
          <button
            className="jp-mod-styled pop-ScheduleRow-toggle"
            title={schedule.paused ? 'Fire again from now (missed slots are not caught up)' : 'Stop it firing'}
            onClick={() => void model.setPaused(schedule.name, !schedule.paused)}
          >
            {schedule.paused ? 'Resume' : 'Pause'}
          </button>
        </div>
      )}
      {schedule.history.length > 0 && (
        <ul className="pop-ScheduleRow-history">
          {schedule.history.map(slot => (
            <li key={slot.slot} className={`pop-Slot pop-Slot-${slot.action}`} title={slot.why ?? slot.job ?? ''}>
              <span>{slotTime(slot.local)}</span>
              {slot.job && slot.state ? (
                <a
                  href="#"
                  className={`pop-Slot-job pop-state-${slot.state}`}
                  onClick={event => {
                    event.preventDefault();
                    openJob(slot.job!);
                  }}
                >
                  {outcomeText(slot)}
                </a>
              ) : (
                <span className="pop-Slot-outcome">{outcomeText(slot)}</span>
              )}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

export function ScheduleList(props: { model: SchedulesModel; openJob: (id: string) => void }): JSX.Element | null {
  const { model, openJob } = props;
  if (model.list.length === 0 && !model.problem) {
    return null;
  }
  return (
    <details className="pop-Schedules" open>
      <summary>Schedules ({model.list.length})</summary>
      {model.problem && <div className="pop-Message pop-Message-error">{model.problem}</div>}
      <ul className="pop-JobList">
        {model.list.map(schedule => (
          <ScheduleRow key={schedule.name} schedule={schedule} model={model} openJob={openJob} />
        ))}
      </ul>
    </details>
  );
}
