import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  actionsFor,
  counts,
  initialState,
  noticeOf,
  pipelineOfPath,
  ranOn,
  tabLabel,
  visibleJobs,
  whereNow,
  withEvent,
  withPage,
  withSummary
} from '../state';
import { ErrorInfo, JobDetail, JobSummary } from '../types';
import { job } from './fixtures';

const page = (jobs = [job()], total = jobs.length) => ({ jobs, total, offset: 0, limit: 200, data_dir: '/p/data' });

test('a page replaces what the panel knew', () => {
  let state = withPage(initialState(), page([job({ id: 'old' })]));
  state = withPage(state, page([job({ id: 'a' }), job({ id: 'b' })], 7));
  assert.deepEqual(Object.keys(state.jobs).sort(), ['a', 'b']);
  assert.equal(state.total, 7);
  assert.equal(state.dataDir, '/p/data');
});

test("an event's job summary updates the job it names, and a new job is counted", () => {
  const start = withPage(initialState(), page());
  const moved = job({ progress: 50, current_task: 'analysis', updated_at: '2026-11-22T08:00:09Z' });
  const folded = withEvent(start, 'stage', { event: { kind: 'stage' }, job: moved });
  assert.equal(folded.jobId, 'j1');
  assert.equal(folded.refetch, false);
  assert.equal(folded.state.jobs.j1.progress, 50);
  assert.equal(folded.state.total, 1);
  assert.equal(start.jobs.j1.progress, 25, 'the old state is left as it was');

  const fresh = withEvent(folded.state, 'job', { job: job({ id: 'j2', state: 'pending', activity: 'queued' }) });
  assert.equal(fresh.state.total, 2);
  assert.equal(fresh.state.jobs.j2.activity, 'queued');
});

test('an event older than what the panel holds does not roll the job back', () => {
  const start = withPage(initialState(), page([job({ state: 'done', updated_at: '2026-11-22T09:00:00Z' })]));
  const stale = withEvent(start, 'stage', { job: job({ state: 'running', updated_at: '2026-11-22T08:59:00Z' }) });
  assert.equal(stale.state, start);
  assert.equal(stale.jobId, 'j1');
});

test('a reset asks for a refetch; events without a job change nothing', () => {
  const start = withPage(initialState(), page());
  assert.deepEqual(withEvent(start, 'reset', { reason: 'missed' }), { state: start, refetch: true, jobId: null });
  assert.deepEqual(withEvent(start, 'llm', { event: {} }), { state: start, refetch: false, jobId: null });
  assert.deepEqual(withEvent(start, 'job', { job: null }), { state: start, refetch: false, jobId: null });
});

test('open jobs come first, then the newest; filters match state, activity and text', () => {
  const jobs = [
    job({ id: 'done-old', state: 'done', activity: 'ended', place: 'complete', created_at: '2026-11-20T00:00:00Z' }),
    job({ id: 'done-new', state: 'done', activity: 'ended', place: 'complete', created_at: '2026-11-21T00:00:00Z' }),
    job({ id: 'queued', state: 'pending', activity: 'queued', created_at: '2026-11-22T07:00:00Z' }),
    job({ id: 'gate', state: 'waiting', activity: 'waiting', waiting_gates: ['review'] }),
    job({ id: 'run', name: 'Heat pumps in the UK' }),
    job({
      id: 'broke',
      state: 'failed',
      activity: 'ended',
      place: 'failed',
      error: {
        task: 'research',
        stage: 'parsing',
        type: 'JSONDecodeError',
        message: 'Expecting value',
        notebook: null,
        cell_index: null,
        exec_count: null,
        cell_source: null,
        traceback: [],
        fix: null
      }
    })
  ];
  const state = withPage(initialState(), page(jobs));
  assert.deepEqual(
    visibleJobs(state).map(j => j.id),
    ['run', 'gate', 'queued', 'broke', 'done-new', 'done-old']
  );
  assert.deepEqual(
    visibleJobs(state, { state: 'done' }).map(j => j.id),
    ['done-new', 'done-old']
  );
  assert.deepEqual(
    visibleJobs(state, { state: 'ended' }).map(j => j.id),
    ['broke', 'done-new', 'done-old']
  );
  assert.deepEqual(
    visibleJobs(state, { search: 'HEAT' }).map(j => j.id),
    ['run']
  );
  assert.deepEqual(
    visibleJobs(state, { search: 'expecting' }).map(j => j.id),
    ['broke']
  );
  assert.deepEqual(counts(state), { running: 1, waiting: 1, queued: 1, ended: 3 });
});

test('what a row says the job is doing', () => {
  assert.equal(whereNow(job()), 'research / inference');
  assert.equal(
    whereNow(job({ activity: 'waiting', waiting_gates: ['review', 'legal'] })),
    'waiting for approval: review, legal'
  );
  assert.equal(whereNow(job({ current_task: null, current_stage: null })), '');
  const ended = { current_task: null, current_stage: null };
  const error = (over: Partial<ErrorInfo>): ErrorInfo =>
    ({ task: null, stage: null, type: 'ValueError', message: 'bad', ...over }) as ErrorInfo;
  assert.equal(whereNow(job({ ...ended, error: error({ task: 'a', stage: 'parsing' }) })), 'a / parsing: ValueError');
  assert.equal(whereNow(job({ ...ended, error: error({ type: 'BudgetExceeded' }) })), 'BudgetExceeded');
  // a cancel is not a failure: it says so, and a job cancelled at a gate has no ": Cancelled" stub
  const cancelled = error({ type: 'Cancelled', message: 'the job was cancelled' });
  assert.equal(whereNow(job({ ...ended, state: 'cancelled', error: cancelled })), 'cancelled');
  assert.equal(
    whereNow(job({ ...ended, state: 'cancelled', error: { ...cancelled, task: 'a', stage: 'inference' } })),
    'cancelled in a / inference'
  );
});

test('buttons are what the server says the job allows, never worked out here', () => {
  const none = { cancel: false, resume: false, approve: false, archive: false, restore: false, delete: false };
  assert.deepEqual(actionsFor(job()), { ...none, cancel: true });
  assert.deepEqual(actionsFor(job({ actions: ['resume', 'archive', 'delete'] })), {
    ...none,
    resume: true,
    archive: true,
    delete: true
  });
  assert.deepEqual(actionsFor(job({ actions: ['cancel', 'approve', 'reject'] })), {
    ...none,
    cancel: true,
    approve: true
  });
  assert.deepEqual(actionsFor(job({ actions: ['restore', 'delete'] })), { ...none, restore: true, delete: true });
  // the same states as before the server sent actions: the state alone decides nothing here
  assert.deepEqual(actionsFor(job({ state: 'failed', activity: 'ended', place: 'failed', actions: [] })), none);
  assert.deepEqual(actionsFor({ ...job(), actions: undefined } as unknown as JobSummary), none);
});

test('ranOn names the machine, and the Celery worker when there was one', () => {
  assert.equal(ranOn(job()), 'ran on vm');
  assert.equal(ranOn(job({ executor: 'celery', host: 'b', worker: 'pop-1@b' })), 'ran on celery worker pop-1@b');
  assert.equal(ranOn(job({ host: null })), '');
});

test("a job's tab says which job it is: its name and the end of its id", () => {
  const id = 'release-notes-20261205-040312-a1b2c3';
  assert.equal(tabLabel(id, 'Release notes for 4.2'), 'Release notes for 4.2 (…a1b2c3)');
  assert.notEqual(
    tabLabel('release-notes-20261205-040312-a1b2c3', 'Release'),
    tabLabel('release-notes-20261205-040313-ffee00', 'Release'),
    'two jobs of one pipeline tell apart'
  );
  assert.equal(tabLabel('c1', null), 'c1', 'a short id is the label');
  assert.equal(tabLabel(id, null), 'release-notes-202612…a1b2c3');
  assert.equal(tabLabel(id, 'x'.repeat(40)), `${'x'.repeat(23)}… (…a1b2c3)`);
});

test('a job failing, cancelled, at a gate or done is news once, as it happens', () => {
  const running = job({ name: 'Tides' });
  const failed = job({
    name: 'Tides',
    state: 'failed',
    activity: 'ended',
    current_task: null,
    current_stage: null,
    error: { task: 'research', stage: 'parsing', type: 'ValueError', message: 'bad' } as ErrorInfo
  });
  assert.deepEqual(noticeOf(running, failed), {
    kind: 'failed',
    job: failed,
    text: 'Tides failed: research / parsing: ValueError'
  });
  assert.equal(noticeOf(failed, { ...failed, updated_at: 'later' }), null, 'still failed: not news again');
  const gated = job({ activity: 'waiting', state: 'waiting', waiting_gates: ['review'] });
  assert.equal(noticeOf(running, gated)?.text, 'j1 waits for approval: review');
  assert.equal(noticeOf(gated, { ...gated, progress: 60 }), null);
  const cancelled = job({ state: 'cancelled', activity: 'ended' });
  assert.equal(noticeOf(running, cancelled)?.kind, 'cancelled');
  const done = job({ state: 'done', activity: 'ended', cost: '$0.0020' });
  assert.deepEqual(noticeOf(running, done)?.text, 'j1 is done ($0.0020)');
  assert.equal(noticeOf(undefined, job({ state: 'pending', activity: 'queued' })), null, 'a new job: not news');
  assert.equal(noticeOf(running, job({ progress: 80 })), null, 'moving on: not news');
});

test("a file's pipeline: its pipeline.yaml or a notebook under pipelines/<slug>/", () => {
  assert.equal(pipelineOfPath('pipelines/hello/pipeline.yaml'), 'hello');
  assert.equal(pipelineOfPath('proj/pipelines/ticket-triage/tasks/classify.ipynb'), 'ticket-triage');
  assert.equal(pipelineOfPath('pipelines/ticket-triage/experiments/classify-reworded.ipynb'), 'ticket-triage');
  assert.equal(pipelineOfPath('pipelines/hello/tasks/.ipynb_checkpoints/explain-checkpoint.ipynb'), null);
  assert.equal(pipelineOfPath('pipelines/hello/schemas/out.json'), null);
  assert.equal(pipelineOfPath('pipelines/hello/sub/pipeline.yaml'), null, 'only the definition itself');
  assert.equal(pipelineOfPath('pipelines/registry.yaml'), null);
  assert.equal(pipelineOfPath('notebooks/01-quickstart.ipynb'), null);
  assert.equal(pipelineOfPath('pipelines/Bad Name/pipeline.yaml'), null);
});

test("a job view shows an event's summary at once, never an older one's", () => {
  const detail = {
    ...job({ state: 'running', updated_at: '2026-12-05T08:00:01' }),
    stages: []
  } as unknown as JobDetail;
  const later = job({ state: 'done', progress: 100, cost: '$0.5', updated_at: '2026-12-05T08:00:02' });
  const shown = withSummary(detail, later);
  assert.equal(shown.state, 'done');
  assert.equal(shown.cost, '$0.5');
  assert.deepEqual((shown as unknown as { stages: unknown[] }).stages, []); // the detail's own parts stay
  assert.equal(withSummary(detail, job({ state: 'pending', updated_at: '2026-12-05T08:00:00' })), detail);
  assert.equal(withSummary(detail, { ...later, id: 'another' }), detail);
  assert.equal(withSummary(detail, undefined), detail);
});
