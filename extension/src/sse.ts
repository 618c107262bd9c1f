/**
 * A Server-Sent Events parser (the WHATWG event-stream format) fed with text as it arrives.
 *
 * The panel reads `/pop/api/events` with `fetch` rather than `EventSource`, so that the request carries
 * Jupyter's token header (EventSource cannot send headers) and a `Last-Event-ID` of our choosing.
 */

export interface SSEMessage {
  /** The last `id:` seen so far in the stream (as EventSource's lastEventId). */
  id: string | null;
  event: string;
  data: string;
}

export class SSEParser {
  /** The last event id the stream gave; send it back as `Last-Event-ID` on reconnection. */
  lastEventId: string | null = null;
  /** The reconnection delay the server asked for (`retry:`), in milliseconds. */
  retryMs: number | null = null;

  private _buffer = '';
  private _event = '';
  private _data: string[] = [];
  private _sawCR = false;

  /** Take a chunk of the stream; returns the messages it completed. */
  feed(chunk: string): SSEMessage[] {
    if (this._sawCR && chunk.startsWith('\n')) {
      chunk = chunk.slice(1); // the \n of a \r\n split across two chunks
    }
    this._sawCR = chunk.endsWith('\r');
    this._buffer += chunk;
    const out: SSEMessage[] = [];
    const lines = this._buffer.split(/\r\n|\r|\n/);
    this._buffer = lines.pop() ?? ''; // the last piece has no line end yet
    for (const line of lines) {
      const message = this._line(line);
      if (message) {
        out.push(message);
      }
    }
    return out;
  }

  private _line(line: string): SSEMessage | null {
    if (line === '') {
      return this._dispatch();
    }
    if (line.startsWith(':')) {
      return null; // a comment
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this._event = value;
        break;
      case 'data':
        this._data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.lastEventId = value;
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) {
          this.retryMs = Number(value);
        }
        break;
    }
    return null;
  }

  private _dispatch(): SSEMessage | null {
    const hadData = this._data.length > 0;
    const message = {
      id: this.lastEventId,
      event: this._event || 'message',
      data: this._data.join('\n')
    };
    this._event = '';
    this._data = [];
    return hadData ? message : null;
  }
}
