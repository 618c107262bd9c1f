/**
 * The JSON the pop-nb server extension answers with: the pydantic models of `pop_nb/models/api.py`
 * and `pop_nb/models/status.py`, as `model_dump(mode="json")` writes them.
 */

export type Activity = 'running' | 'queued' | 'waiting' | 'ended';

export interface Totals {
  calls: number;
  attempts: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  unpriced_calls: number;
}

export interface ErrorInfo {
  task: string | null;
  stage: string | null;
  type: string;
  message: string;
  notebook: string | null;
  cell_index: number | null;
  exec_count: number | null;
  cell_source: string | null;
  traceback: string[];
  fix: string | null;
}

export interface JobSummary {
  id: string;
  pipeline: string;
  name: string | null;
  state: string;
  place: 'current' | 'complete' | 'failed' | string;
  activity: Activity;
  progress: number;
  current_task: string | null;
  current_stage: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  updated_at: string;
  totals: Totals;
  cost: string;
  error: ErrorInfo | null;
  waiting_gates: string[];
  recoveries: number;
  /** who ran it last (local, celery), on which machine, and which Celery worker */
  executor: string | null;
  host: string | null;
  worker: string | null;
  /** what may be done to it now, decided by the server (pop_nb.models.api.allowed_actions) */
  actions: JobAction[];
}

export type JobAction = 'resume' | 'cancel' | 'approve' | 'reject';

export interface JobPage {
  jobs: JobSummary[];
  total: number;
  offset: number;
  limit: number;
  data_dir: string;
}

export interface StageView {
  task: string;
  key: string;
  stage: string;
  refinement: number;
  attempt: number;
  state: string;
  started_at: string | null;
  duration_ms: number | null;
  notebook: string | null;
  path: string | null;
}

export interface TaskStatus {
  state: string;
  skip_reason: string | null;
  gate: 'waiting' | 'approved' | 'rejected' | null;
  error: ErrorInfo | null;
  usage: Totals;
}

export interface JobDetail extends JobSummary {
  path: string;
  /** The job folder relative to the Jupyter server's root; null when it lies outside it. */
  lab_dir: string | null;
  tasks: Record<string, TaskStatus>;
  stages: StageView[];
  outputs: Record<string, unknown>;
  products: string[];
}

/** A finding of `pop compile --explain` (pop_nb.models.api.Finding). */
export interface Finding {
  severity: string;
  finding: string;
  fix: string;
}

/** What `pop compile --explain` last wrote, while still of the pipeline as it is (Explanation). */
export interface Explanation {
  intention: string;
  aligned: boolean;
  findings: Finding[];
  model: string;
  explained_at: string | null;
}

export interface PipelineInfo {
  slug: string;
  file: string;
  description: string;
  tasks: string[];
  error: string | null;
  /** The pipeline's seed_schema (JSON Schema of a seed's data), if it declares one. */
  seed_schema: Record<string, unknown> | null;
  /** The example seeds under the pipeline's seeds/ folder: file name -> seed. */
  examples: Record<string, Record<string, unknown>>;
  /** Its control flow as numbered Markdown steps, from the definition. */
  architecture: string[];
  /** Intention and alignment, once `pop compile <slug> --explain` has run (null before, or once changed). */
  explanation: Explanation | null;
}

/** What every event of `/pop/api/events` carries (a `reset` or `heartbeat` carries less). */
export interface BusData {
  event?: Record<string, unknown>;
  job?: JobSummary | null;
  reason?: string;
}
