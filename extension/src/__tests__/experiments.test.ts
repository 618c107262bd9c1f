import assert from 'node:assert/strict';
import { test } from 'node:test';

import { dataFile, experimentOf, heat, percentDone, progressText, scoreText, usd } from '../experiments';
import { ExperimentInfo, VariantProgress } from '../types';

const variant = (over: Partial<VariantProgress> = {}): VariantProgress => ({
  name: 'mini',
  batch: 'exp-triage-mini',
  planned: 20,
  submitted: 20,
  running: 0,
  done: 0,
  failed: 0,
  rejected: 0,
  ...over
});

test('a job belongs to the experiment its name starts with; other jobs to none', () => {
  assert.equal(experimentOf('triage/mini/vpn-invoice#0'), 'triage');
  assert.equal(experimentOf('triage/mini-reworded/a/b#12'), 'triage', 'an item id may hold a slash');
  assert.equal(experimentOf('Tidal power'), null);
  assert.equal(experimentOf('triage/mini/x'), null, 'no repeat: not an experiment job');
  assert.equal(experimentOf('../x/y#0'), null);
  assert.equal(experimentOf(null), null);
});

test('progress counts done and failed jobs against what is planned', () => {
  assert.equal(percentDone(variant({ done: 5, failed: 5 })), 50);
  assert.equal(percentDone(variant({ planned: 0 })), 0, 'no dataset yet: nothing, not NaN');
  assert.equal(percentDone(variant({ done: 30 })), 100, 'never past the end');
  const experiment = {
    name: 'triage',
    variants: [variant({ done: 20 }), variant({ name: 'big', done: 3, failed: 2, running: 4 })]
  } as ExperimentInfo;
  assert.equal(progressText(experiment), '23/40 done · 2 failed · 4 running');
});

test('scores, dollars, heat and data-folder paths as the view shows them', () => {
  assert.equal(scoreText(null), '–');
  assert.equal(scoreText(0.456), '0.46');
  assert.equal(usd(0), '$0');
  assert.equal(usd(0.000053), '$0.000053', 'a cheap model is not $0.00');
  assert.equal(usd(0.0192), '$0.0192');
  assert.equal(heat(null), undefined);
  assert.equal(heat(1), 'hsla(120, 60%, 45%, 0.35)');
  assert.equal(heat(0), 'hsla(0, 60%, 45%, 0.35)');
  assert.equal(heat(7), heat(1), 'a notebook metric past 1 is clamped');
  assert.equal(
    dataFile('pipeline-data', 'complete/j/tasks/a/04-inference.ipynb'),
    'pipeline-data/complete/j/tasks/a/04-inference.ipynb'
  );
  assert.equal(dataFile('', 'complete/j/x.ipynb'), 'complete/j/x.ipynb', 'the data folder is the server root');
  assert.equal(dataFile(null, 'complete/j/x.ipynb'), null, 'outside what Lab serves');
});
