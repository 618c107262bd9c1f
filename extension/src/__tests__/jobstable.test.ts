import assert from 'node:assert/strict';
import { test } from 'node:test';

import { nextSort, pagesOf, rowWindow, took, when } from '../state';

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

test('a scrolled list draws the rows in view and a margin, and asks for the pages that hold them', () => {
  assert.deepEqual(rowWindow(0, 260, 26, 100_000, 5), [0, 15]);
  assert.deepEqual(rowWindow(26 * 5000, 260, 26, 100_000, 5), [4995, 5015]);
  assert.deepEqual(rowWindow(26 * 99_995, 260, 26, 100_000, 5), [99_990, 100_000]); // the end
  assert.deepEqual(rowWindow(10_000, 260, 26, 3, 5), [0, 3]); // scrolled past a list that shrank
  assert.deepEqual(rowWindow(-40, 0, 26, 0, 5), [0, 0]);
  assert.deepEqual(pagesOf(0, 15, 100), [0]);
  assert.deepEqual(pagesOf(95, 215, 100), [0, 1, 2]);
  assert.deepEqual(pagesOf(200, 200, 100), []);
});
