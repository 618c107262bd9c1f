/** The job view's task x stage grid, as plain data. */

import { JobDetail, StageView } from './types';

/** The eleven stages, in the order a task runs them (pop_nb.models.pipeline.STAGES). */
export const STAGES = [
  'ingestion',
  'preProcessing',
  'promptTemplating',
  'inference',
  'parsing',
  'validateStructure',
  'validateQuality',
  'critique',
  'refine',
  'finalValidation',
  'integration'
];

export const SHORT: Record<string, string> = {
  ingestion: 'ingest',
  preProcessing: 'pre',
  promptTemplating: 'prompt',
  inference: 'infer',
  parsing: 'parse',
  validateStructure: 'v.struct',
  validateQuality: 'v.qual',
  critique: 'critique',
  refine: 'refine',
  finalValidation: 'final',
  integration: 'integr'
};

/** Every run of each (task, stage), oldest first. */
export function runsByCell(job: JobDetail): Map<string, StageView[]> {
  const cells = new Map<string, StageView[]>();
  for (const run of job.stages) {
    const key = `${run.task}\u0000${run.stage}`;
    cells.set(key, [...(cells.get(key) ?? []), run]);
  }
  return cells;
}
