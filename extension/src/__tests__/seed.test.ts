import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runsByCell } from '../grid';
import { parseRecord, recordOfDataPath, recordPath } from '../records';
import { inlineParts } from '../about';
import { parseSeed, startingText } from '../seed';
import { JobDetail, PipelineInfo, StageView } from '../types';
import { job } from './fixtures';

test('the seed text must be a JSON object, and says why not', () => {
  assert.deepEqual(parseSeed('{"data": {"topic": "x"}}'), { seed: { data: { topic: 'x' } }, problem: null });
  assert.match(parseSeed('{"data": ').problem!, /^not JSON/);
  for (const text of ['[1]', 'null', '"seed"', '3']) {
    assert.equal(parseSeed(text).seed, null, text);
    assert.match(parseSeed(text).problem!, /JSON object/);
  }
});

test("the form starts from the pipeline's first example, without its pipeline key", () => {
  const info: PipelineInfo = {
    slug: 'tiny',
    file: '/p/pipelines/tiny/pipeline.yaml',
    description: '',
    tasks: ['a'],
    error: null,
    seed_schema: null,
    examples: { 'a.json': { pipeline: 'tiny', name: 'A', data: { n: 1 } }, 'b.json': { data: { n: 2 } } },
    architecture: ['1. **a** (tasks/a.ipynb); first, from the seed'],
    explanation: null
  };
  assert.deepEqual(JSON.parse(startingText(info)), { name: 'A', data: { n: 1 } });
  assert.deepEqual(JSON.parse(startingText({ ...info, examples: {} })), { data: {} });
  assert.deepEqual(JSON.parse(startingText(undefined)), { data: {} });
});

test('the grid keeps every run of a stage, refine passes included, in order', () => {
  const run = (task: string, key: string, stage: string, refinement = 0): StageView => ({
    task,
    key,
    stage,
    refinement,
    attempt: 1,
    state: 'done',
    started_at: null,
    duration_ms: 5,
    notebook: `tasks/${task}/${key}.ipynb`,
    path: null,
    calls: 0,
    cost_usd: 0
  });
  const detail: JobDetail = {
    ...job(),
    path: '/p/data/current/j1',
    lab_dir: 'data/current/j1',
    tasks: {},
    stages: [
      run('a', 'critique', 'critique'),
      run('a', 'critique.r1', 'critique', 1),
      run('b', 'inference', 'inference')
    ],
    outputs: {},
    products: [],
    runs: [],
    seed: {}
  };
  const cells = runsByCell(detail);
  assert.deepEqual(
    cells.get('a\u0000critique')!.map(r => r.key),
    ['critique', 'critique.r1']
  );
  assert.equal(cells.get('b\u0000inference')!.length, 1);
  assert.equal(cells.get('a\u0000inference'), undefined);
});

test("a job's files are named by the job's id, never by the folder it is in now", () => {
  const path = recordPath('j1', 'tasks/a/04-inference.ipynb');
  assert.equal(path, 'pop-job:j1/tasks/a/04-inference.ipynb');
  assert.deepEqual(parseRecord(path), { job: 'j1', relative: 'tasks/a/04-inference.ipynb' });
  assert.deepEqual(parseRecord('j1'), { job: 'j1', relative: '' }); // the drive's local path of the folder
  assert.equal(parseRecord('pop-job:../etc/passwd'), null); // not an id: never asked for
  // an experiment names a run's notebook under the data folder: the same record, wherever it moves
  assert.equal(recordOfDataPath('complete/j1/tasks/a/04-inference.ipynb'), path);
  assert.equal(recordOfDataPath('failed/j1/tasks/a/04-inference.ipynb'), path);
  assert.equal(recordOfDataPath('experiments/x.yaml'), null);
});

test('the explanation is shown with bold and code, and nothing else is interpreted', () => {
  assert.deepEqual(inlineParts('1. **plan** runs `pop approve x`; <b>not html</b> *x*'), [
    { kind: 'text', text: '1. ' },
    { kind: 'bold', text: 'plan' },
    { kind: 'text', text: ' runs ' },
    { kind: 'code', text: 'pop approve x' },
    { kind: 'text', text: '; <b>not html</b> *x*' }
  ]);
  assert.deepEqual(inlineParts('****'), [{ kind: 'text', text: '****' }]);
});
