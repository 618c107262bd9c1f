/**
 * "About <pipeline>" in the Run pipeline form: what `pop compile --explain` says the pipeline is for
 * (its intention and alignment verdict, once explained) and its architecture, which the server writes
 * from the definition itself and so is always there.
 */

import React from 'react';

import { PipelineInfo } from './types';

/** A line of the explanation's Markdown as plain, bold and code runs (nothing else is interpreted). */
export function inlineParts(text: string): { kind: 'text' | 'bold' | 'code'; text: string }[] {
  const parts: { kind: 'text' | 'bold' | 'code'; text: string }[] = [];
  for (const piece of text.split(/(\*\*[^*]+\*\*|`[^`]+`)/)) {
    if (!piece) {
      continue;
    }
    if (piece.startsWith('**') && piece.endsWith('**') && piece.length > 4) {
      parts.push({ kind: 'bold', text: piece.slice(2, -2) });
    } else if (piece.startsWith('`') && piece.endsWith('`') && piece.length > 2) {
      parts.push({ kind: 'code', text: piece.slice(1, -1) });
    } else {
      parts.push({ kind: 'text', text: piece });
    }
  }
  return parts;
}

function Inline(props: { text: string }): JSX.Element {
  return (
    <>
      {inlineParts(props.text).map((part, i) =>
        part.kind === 'bold' ? (
          <b key={i}>{part.text}</b>
        ) : part.kind === 'code' ? (
          <code key={i}>{part.text}</code>
        ) : (
          part.text
        )
      )}
    </>
  );
}

export function About(props: { pipeline: PipelineInfo }): JSX.Element {
  const { pipeline } = props;
  const explained = pipeline.explanation;
  const verdict = explained ? (explained.aligned ? 'aligned' : 'not aligned') : 'not explained yet';
  return (
    <details className="pop-About">
      <summary>
        About {pipeline.slug} ·{' '}
        <span className={`pop-About-verdict pop-About-${explained?.aligned ?? 'unknown'}`}>{verdict}</span>
      </summary>
      {explained ? (
        <div className="pop-About-intention">
          {explained.intention
            .split(/\n\s*\n/)
            .filter(p => p.trim())
            .map((paragraph, i) => (
              <p key={i}>
                <Inline text={paragraph.replace(/\s*\n\s*/g, ' ')} />
              </p>
            ))}
        </div>
      ) : (
        <div className="pop-About-hint">
          Run <code>pop compile {pipeline.slug} --explain</code> for what it is for and whether its design serves that.
        </div>
      )}
      <ol className="pop-About-architecture">
        {pipeline.architecture.map((step, i) => (
          <li key={i}>
            <Inline text={step.replace(/^\d+\.\s*/, '')} />
          </li>
        ))}
      </ol>
      {explained && explained.findings.length > 0 && (
        <ul className="pop-About-findings">
          {explained.findings.map((f, i) => (
            <li key={i}>
              <span className={`pop-About-severity pop-About-${f.severity}`}>{f.severity}</span> {f.finding}
              {f.fix && <span className="pop-About-fix"> Fix: {f.fix}</span>}
            </li>
          ))}
        </ul>
      )}
      {explained && <div className="pop-About-by">explained by {explained.model}</div>}
    </details>
  );
}
