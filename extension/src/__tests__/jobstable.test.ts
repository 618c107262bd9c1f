import assert from 'node:assert/strict';
import { test } from 'node:test';

import { nextSort, took, when } from '../state';

test('a column sorts descending first, then flips each click', () => {
  assert.equal(nextSort('-created', 'cost'), '-cost');
  assert.equal(nextSort('-cost', 'cost'), 'cost');
  assert.equal(nextSort('cost', 'cost'), '-cost');
});

test('times and durations read as people read them', () => {
  assert.equal(when('2026-12-05T08:01:34.620+00:00'), '2026-12-05 08:01:34');
  assert.equal(when(null), '');
  const start = '2026-12-05T08:00:00.000+00:00';
  assert.equal(took({ started_at: start, ended_at: '2026-12-05T08:00:02.500+00:00' }), '2.5 s');
  assert.equal(took({ started_at: start, ended_at: '2026-12-05T08:03:07.000+00:00' }), '3 min 7 s');
  assert.equal(took({ started_at: start, ended_at: '2026-12-05T10:05:00.000+00:00' }), '2 h 5 min');
  assert.equal(took({ started_at: start, ended_at: null }), '');
  assert.equal(took({ started_at: start, ended_at: 'not a time' }), '');
});
