import { JobSummary } from '../types';

/** A job summary as the server sends one, with `over` changed. */
export function job(over: Partial<JobSummary> = {}): JobSummary {
  return {
    id: 'j1',
    pipeline: 'content-generation',
    name: null,
    state: 'running',
    place: 'current',
    activity: 'running',
    progress: 25,
    current_task: 'research',
    current_stage: 'inference',
    created_at: '2026-11-22T08:00:00Z',
    started_at: '2026-11-22T08:00:01Z',
    ended_at: null,
    updated_at: '2026-11-22T08:00:05Z',
    totals: {
      calls: 1,
      attempts: 1,
      input_tokens: 10,
      output_tokens: 5,
      cost_usd: 0.0001,
      unpriced_calls: 0,
      cache_hits: 0,
      saved_usd: 0
    },
    cost: '$0.0001',
    saved: '',
    error: null,
    waiting_gates: [],
    recoveries: 0,
    executor: 'local',
    host: 'vm',
    worker: null,
    actions: ['cancel'],
    ...over
  };
}
