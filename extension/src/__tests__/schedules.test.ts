import assert from 'node:assert/strict';
import { test } from 'node:test';

import { outcomeText, scheduleOf, slotTime } from '../schedules';
import { SlotView } from '../types';

const slot = (over: Partial<SlotView> = {}): SlotView => ({
  slot: '2026-12-05T06:00:00+00:00',
  local: '2026-12-05T07:00:00+01:00',
  action: 'started',
  job: 'digest-20261205T060000Z',
  state: 'done',
  why: null,
  ...over
});

test("a slot's job belongs to the schedule its id names; other jobs to none", () => {
  assert.equal(scheduleOf('digest-20261205T060000Z'), 'digest');
  assert.equal(scheduleOf('nightly-report-20261205T060000Z'), 'nightly-report');
  assert.equal(scheduleOf('content-generation-20261205T101818-71cc32'), null);
  assert.equal(scheduleOf('Digest-20261205T060000Z'), null);
  assert.equal(scheduleOf(null), null);
});

test("a slot's time is its own zone's wall clock", () => {
  assert.equal(slotTime('2026-12-05T07:00:00+01:00'), '2026-12-05 07:00 +01:00');
  assert.equal(slotTime('2026-12-05T06:00:00Z'), '2026-12-05 06:00 UTC');
  assert.equal(slotTime('not a time'), 'not a time');
});

test('what became of a slot: its job state, queued, skipped or missed', () => {
  assert.equal(outcomeText(slot()), 'done');
  assert.equal(outcomeText(slot({ state: null })), 'not found');
  assert.equal(outcomeText(slot({ action: 'queued', state: null })), 'queued');
  assert.equal(outcomeText(slot({ action: 'queued', state: 'running' })), 'running');
  assert.equal(outcomeText(slot({ action: 'skipped', job: null, state: null })), 'skipped');
  assert.equal(outcomeText(slot({ action: 'missed', job: null, state: null })), 'missed');
});
