import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SSEParser } from '../sse';

const STREAM =
  'retry: 2000\n\n' +
  ': a comment\n' +
  'id: e1-1\nevent: stage\ndata: {"a":1}\n\n' +
  'id: e1-2\r\nevent: job\r\ndata: line one\r\ndata: line two\r\n\r\n' +
  'id: e1-3\revent: heartbeat\rdata: {}\r\r';

const EXPECTED = [
  { id: 'e1-1', event: 'stage', data: '{"a":1}' },
  { id: 'e1-2', event: 'job', data: 'line one\nline two' },
  { id: 'e1-3', event: 'heartbeat', data: '{}' }
];

test('a whole stream gives its events, with ids and retry', () => {
  const parser = new SSEParser();
  assert.deepEqual(parser.feed(STREAM), EXPECTED);
  assert.equal(parser.lastEventId, 'e1-3');
  assert.equal(parser.retryMs, 2000);
});

test('the same stream cut at every position gives the same events', () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const parser = new SSEParser();
    const got = [...parser.feed(STREAM.slice(0, cut)), ...parser.feed(STREAM.slice(cut))];
    assert.deepEqual(got, EXPECTED, `cut at ${cut}: ${JSON.stringify(STREAM.slice(0, cut))}`);
  }
});

test('one character at a time gives the same events', () => {
  const parser = new SSEParser();
  const got = [...STREAM].flatMap(ch => parser.feed(ch));
  assert.deepEqual(got, EXPECTED);
});

test('an event with no data is not dispatched, but its id counts', () => {
  const parser = new SSEParser();
  assert.deepEqual(parser.feed('id: x-9\nevent: job\n\n'), []);
  assert.equal(parser.lastEventId, 'x-9');
  assert.deepEqual(parser.feed('data: y\n\n'), [{ id: 'x-9', event: 'message', data: 'y' }]);
});

test('an unfinished event waits for its blank line; a bad retry is ignored', () => {
  const parser = new SSEParser();
  assert.deepEqual(parser.feed('retry: soon\ndata: half'), []);
  assert.equal(parser.retryMs, null);
  assert.deepEqual(parser.feed('\n\n'), [{ id: null, event: 'message', data: 'half' }]);
});
