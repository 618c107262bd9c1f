/**
 * "Run pipeline": a seed form. Pick a pipeline, start from one of its example seeds, edit the seed as
 * JSON; the server checks it against the pipeline (its seed_schema included) as you type, and again
 * before the job is made.
 */

import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import React, { useEffect, useState } from 'react';

import { About } from './about';
import { PopAPI } from './api';
import { parseSeed, seedText, startingText } from './seed';
import { PipelineInfo } from './types';
import { reasonText } from './reason';

export interface FormValue {
  pipeline: string;
  seed: Record<string, unknown> | null;
  problem: string | null;
}

function Form(props: { widget: RunForm }): JSX.Element {
  const { widget } = props;
  const usable = widget.pipelines.filter(p => !p.error);
  const [slug, setSlug] = useState(widget.value.pipeline);
  const [text, setText] = useState(widget.text);
  const [verdict, setVerdict] = useState<string | null>(widget.problem);
  const [checking, setChecking] = useState(false);
  const pipeline = widget.pipelines.find(p => p.slug === slug);

  useEffect(() => {
    const { seed, problem } = parseSeed(text);
    widget.record(slug, text, seed, problem);
    if (!seed) {
      setVerdict(problem);
      return;
    }
    setChecking(true);
    const timer = window.setTimeout(() => {
      widget.api
        .check(slug, seed)
        .then(
          () => (setVerdict(null), widget.record(slug, text, seed, null)),
          (reason: unknown) => (setVerdict(reasonText(reason)), widget.record(slug, text, seed, reasonText(reason)))
        )
        .finally(() => setChecking(false));
    }, 300);
    return () => window.clearTimeout(timer);
  }, [slug, text]);

  return (
    <div className="pop-RunForm">
      <label>
        Pipeline{' '}
        <select
          className="jp-mod-styled"
          aria-label="pipeline"
          value={slug}
          onChange={event => {
            const next = event.target.value;
            setSlug(next);
            setText(startingText(widget.pipelines.find(p => p.slug === next)));
          }}
        >
          {usable.map(p => (
            <option key={p.slug} value={p.slug}>
              {p.slug}
            </option>
          ))}
        </select>
      </label>
      {pipeline?.description && <div className="pop-RunForm-description">{pipeline.description}</div>}
      {pipeline && <About pipeline={pipeline} />}
      {pipeline && Object.keys(pipeline.examples).length > 1 && (
        <label>
          Example{' '}
          <select
            className="jp-mod-styled"
            aria-label="example seed"
            onChange={event => setText(seedText(pipeline.examples[event.target.value]))}
          >
            {Object.keys(pipeline.examples).map(name => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
      )}
      <label className="pop-RunForm-seed">
        <span>
          Seed as JSON: <code>data</code>, and optionally <code>name</code>, <code>llm</code>, <code>budget_usd</code>
        </span>
        {/* the verdict above the editor, where it is seen while typing (not below the fold) */}
        <div className={`pop-RunForm-verdict ${verdict ? 'pop-Message-error' : 'pop-RunForm-ok'}`} role="status">
          {checking ? 'checking…' : (verdict ?? `fits ${slug}`)}
        </div>
        <textarea
          className="jp-mod-styled pop-SeedEditor"
          spellCheck={false}
          rows={12}
          value={text}
          onChange={event => setText(event.target.value)}
        />
      </label>
      {widget.pipelines
        .filter(p => p.error)
        .map(p => (
          <div key={p.slug} className="pop-Message">
            {p.slug} does not load: {p.error}
          </div>
        ))}
    </div>
  );
}

/** The dialog's body; `getValue()` is what Dialog returns when the user presses Run. */
export class RunForm extends ReactWidget {
  constructor(
    readonly api: PopAPI,
    readonly pipelines: PipelineInfo[],
    start: { pipeline?: string; text?: string; problem?: string | null } = {}
  ) {
    super();
    const first = pipelines.find(p => p.slug === start.pipeline) ?? pipelines.find(p => !p.error);
    this.text = start.text ?? startingText(first);
    this.problem = start.problem ?? null;
    this.value = { pipeline: first?.slug ?? '', seed: parseSeed(this.text).seed, problem: this.problem };
  }

  text: string;
  problem: string | null;
  value: FormValue;

  record(pipeline: string, text: string, seed: Record<string, unknown> | null, problem: string | null): void {
    this.text = text;
    this.problem = problem;
    this.value = { pipeline, seed, problem };
  }

  getValue(): FormValue {
    return this.value;
  }

  render(): JSX.Element {
    return <Form widget={this} />;
  }
}

/**
 * Ask for a seed and submit it; on a refusal, show the form again with what was typed and why. Returns
 * the new job's id, or null if the user gave up.
 */
export async function runPipelineDialog(api: PopAPI, pipeline?: string, text?: string): Promise<string | null> {
  const pipelines = await api.pipelines();
  if (!pipelines.some(p => !p.error)) {
    await showDialog({
      title: 'No pipeline to run',
      body: pipelines.length
        ? pipelines.map(p => `${p.slug}: ${p.error}`).join('\n')
        : 'This project has no pipelines/<slug>/pipeline.yaml. Run `pop init` to make an example.',
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  // `text`: a seed to start from (Run again with these inputs), else the pipeline's example
  let start: { pipeline?: string; text?: string; problem?: string | null } = { pipeline, text };
  for (;;) {
    const form = new RunForm(api, pipelines, start);
    const result = await showDialog({
      title: 'Run pipeline',
      body: form,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run' })],
      focusNodeSelector: 'textarea'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    const { pipeline: slug, seed, problem } = result.value;
    if (!seed) {
      start = { pipeline: slug, text: form.text, problem };
      continue;
    }
    try {
      await api.check(slug, seed);
      const job = await api.submit(slug, seed);
      return job.id;
    } catch (reason) {
      start = { pipeline: slug, text: form.text, problem: reasonText(reason) };
    }
  }
}
