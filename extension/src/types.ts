/**
 * The JSON the pop-nb server extension answers with. The API's types are generated at build time
 * (`jlpm build:types`, openapi-typescript) from `pop_nb/server/openapi.json`, which Python writes from
 * the pydantic models of `pop_nb/models/api.py`: one contract, never written out twice.
 */

import type { components } from './api.gen';

type Schemas = components['schemas'];

export type Totals = Schemas['Totals'];
export type ErrorInfo = Schemas['ErrorInfo'];
export type JobSummary = Schemas['JobSummary'];
export type Activity = JobSummary['activity'];
export type JobAction = JobSummary['actions'][number];
export type JobPage = Schemas['JobPage'];
export type StageView = Schemas['StageView'];
export type TaskStatus = Schemas['TaskStatus'];
export type JobDetail = Schemas['JobDetail'];
export type Finding = Schemas['Finding'];
export type Explanation = Schemas['Explanation'];
export type PipelineInfo = Schemas['PipelineInfo'];
export type ErrorBody = Schemas['ErrorBody'];
export type ExperimentInfo = Schemas['ExperimentInfo'];
export type ScheduleView = Schemas['ScheduleView'];
export type SlotView = Schemas['SlotView'];
export type VariantProgress = Schemas['VariantProgress'];
export type ExperimentDetail = Schemas['ExperimentDetail'];
export type VariantSummary = Schemas['VariantSummary'];
export type MetricSummary = Schemas['MetricSummary'];
export type ExperimentItem = Schemas['ExperimentItem'];
export type ItemRun = Schemas['ItemRun'];
export type TaskDiff = Schemas['TaskDiff'];
export type JobFile = Schemas['JobFile'];
export type CopyMade = Schemas['CopyMade'];
export type JobDeleted = Schemas['JobDeleted'];
export type LogChunk = Schemas['LogChunk'];
export type StageSnapshot = Schemas['StageSnapshot'];

/** What every event of `/pop/api/events` carries (a `reset` or `heartbeat` carries less). */
export interface BusData {
  event?: Record<string, unknown>;
  job?: JobSummary | null;
  reason?: string;
}
