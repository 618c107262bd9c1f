/**
 * One experiment in the main area: each variant's progress, the comparison table (each metric's mean
 * with its 95 % interval and win/tie/loss against the baseline, exact cost, tokens, latency, what the
 * cache saved), the worst regressions, a heat map of every item, and one item under every variant side
 * by side, with what differs from the baseline's job and links to every stage notebook. It follows the
 * experiment's jobs live; grades not kept yet are asked for only when the user presses Grade.
 */

import { Dialog, ReactWidget, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import React, { useEffect, useReducer, useState } from 'react';

import { PopAPI } from './api';
import { dataFile, ExperimentsModel, heat, scoreText, usd } from './experiments';
import { recordOfDataPath } from './records';
import { reasonText } from './reason';
import { ExperimentDetail, ExperimentItem, ItemRun, MetricSummary, TaskDiff, VariantSummary } from './types';

export interface ExperimentViewOptions {
  name: string;
  api: PopAPI;
  experiments: ExperimentsModel;
  /** Open a file (a path as Lab names it) in a tab. */
  open: (path: string) => void;
  openJob: (id: string) => void;
}

function Interval(props: { m: MetricSummary | undefined }): JSX.Element {
  const { m } = props;
  if (!m || m.mean === null) {
    return <span className="pop-Exp-none">–</span>;
  }
  return (
    <span title={`${m.items} items scored${m.errors ? `, ${m.errors} could not be` : ''}`}>
      <b>{scoreText(m.mean)}</b>{' '}
      <span className="pop-Exp-interval">
        [{scoreText(m.low)}, {scoreText(m.high)}]
      </span>
      {m.errors > 0 && <span className="pop-Exp-errors"> {m.errors} err</span>}
    </span>
  );
}

function Paired(props: { m: MetricSummary | undefined }): JSX.Element {
  const { m } = props;
  if (!m || m.win === null) {
    return <span className="pop-Exp-none">baseline</span>;
  }
  return (
    <span title="items better / the same / worse than the baseline's">
      <span className="pop-Exp-win">{m.win}</span>/{m.tie}/<span className="pop-Exp-loss">{m.loss}</span>
    </span>
  );
}

function ComparisonTable(props: { detail: ExperimentDetail; metrics: string[] }): JSX.Element {
  const { detail, metrics } = props;
  const { comparison } = detail;
  return (
    <table className="pop-Exp-table pop-Exp-comparison">
      <thead>
        <tr>
          <th>variant</th>
          <th>done</th>
          <th>failed</th>
          {metrics.map(metric => (
            <React.Fragment key={metric}>
              <th title={`${metric}: mean [95% bootstrap interval]`}>{metric}</th>
              <th title={`${metric}: win/tie/loss against ${comparison.baseline}`}>W/T/L</th>
            </React.Fragment>
          ))}
          <th title="what its jobs paid">cost</th>
          <th title="what an item costs under it (cache hits at their price)">per item</th>
          <th title="what grading it cost (a judge), logged apart from the jobs">grading</th>
          <th>tokens in+out</th>
          <th title="what the response cache saved">saved</th>
          <th>p50</th>
          <th>p95</th>
        </tr>
      </thead>
      <tbody>
        {comparison.variants.map((v: VariantSummary) => (
          <tr key={v.name} data-variant={v.name}>
            <th>
              {v.name}
              {v.name === comparison.baseline && <span className="pop-Badge pop-Exp-baseline">baseline</span>}
            </th>
            <td>{v.done}</td>
            <td className={v.failed ? 'pop-Exp-loss' : ''}>{v.failed}</td>
            {metrics.map(metric => (
              <React.Fragment key={metric}>
                <td className="pop-Exp-metric" data-metric={metric}>
                  <Interval m={v.metrics[metric]} />
                </td>
                <td>
                  <Paired m={v.metrics[metric]} />
                </td>
              </React.Fragment>
            ))}
            <td>{usd(v.cost_usd)}</td>
            <td>{usd(v.cost_per_item_usd)}</td>
            <td>{usd(v.judge_cost_usd)}</td>
            <td>
              {v.input_tokens}+{v.output_tokens}
            </td>
            <td>{v.saved_usd ? `${usd(v.saved_usd)} (${v.cache_hits} hits)` : '–'}</td>
            <td>{v.latency_p50_s === null ? '–' : `${v.latency_p50_s} s`}</td>
            <td>{v.latency_p95_s === null ? '–' : `${v.latency_p95_s} s`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Heat(props: {
  detail: ExperimentDetail;
  metric: string;
  selected: string | null;
  select: (item: string) => void;
}): JSX.Element {
  const { detail, metric, selected, select } = props;
  const variants = detail.comparison.variants.map(v => v.name);
  return (
    <table className="pop-Exp-table pop-Exp-heat">
      <thead>
        <tr>
          <th>item</th>
          {variants.map(v => (
            <th key={v}>{v}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {detail.items.map(row => (
          <tr
            key={row.item}
            data-item={row.item}
            className={row.item === selected ? 'pop-Exp-selected' : ''}
            onClick={() => select(row.item)}
            title={`show ${row.item} under every variant`}
          >
            <th>{row.item}</th>
            {variants.map(v => {
              const value = row.scores[v]?.[metric];
              return (
                <td key={v} style={{ background: heat(value) }}>
                  {scoreText(value)}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Json(props: { value: unknown }): JSX.Element {
  return <pre className="pop-Exp-json">{JSON.stringify(props.value, null, 2)}</pre>;
}

function DiffOf(props: { task: TaskDiff; openFile: (relative: string) => void }): JSX.Element {
  const { task, openFile } = props;
  const models = task.a.models.join(', ') !== task.b.models.join(', ');
  return (
    <div className="pop-Exp-taskDiff" data-task={task.task}>
      <h5>
        {task.task}{' '}
        <span className="pop-Exp-money">
          {usd(task.a.cost_usd)} → {usd(task.b.cost_usd)}, {task.a.input_tokens + task.a.output_tokens} →{' '}
          {task.b.input_tokens + task.b.output_tokens} tokens
        </span>
      </h5>
      {models && task.a.models.length > 0 && task.b.models.length > 0 && (
        <div>
          model {task.a.models.join(', ')} → {task.b.models.join(', ')}
        </div>
      )}
      {task.changes.length > 0 && (
        <ul className="pop-Exp-changes">
          {task.changes.map((c, i) => (
            <li key={i} className={`pop-Exp-change-${c.kind}`}>
              <code>{c.path || '(the output)'}</code>:{' '}
              {c.kind === 'changed' ? (
                <>
                  <del>{JSON.stringify(c.before)}</del> → <ins>{JSON.stringify(c.after)}</ins>
                </>
              ) : c.kind === 'added' ? (
                <ins>{JSON.stringify(c.after)}</ins>
              ) : (
                <del>{JSON.stringify(c.before)}</del>
              )}
            </li>
          ))}
        </ul>
      )}
      {task.fixed.map((e, i) => (
        <div key={`f${i}`} className="pop-Exp-win">
          fixed: {e}
        </div>
      ))}
      {task.new.map((e, i) => (
        <div key={`n${i}`} className="pop-Exp-loss">
          new: {e}
        </div>
      ))}
      {task.prompt_diff.length > 0 && (
        <details className="pop-Exp-prompt">
          <summary>prompt diff ({task.prompt_diff.length} lines)</summary>
          <pre>
            {task.prompt_diff.map((line, i) => (
              <div
                key={i}
                className={
                  line.startsWith('+') && !line.startsWith('+++')
                    ? 'pop-Exp-add'
                    : line.startsWith('-') && !line.startsWith('---')
                      ? 'pop-Exp-del'
                      : ''
                }
              >
                {line}
              </div>
            ))}
          </pre>
        </details>
      )}
      {task.b.notebooks.map(nb => (
        <NotebookLink key={nb} relative={nb} openFile={openFile} />
      ))}
    </div>
  );
}

function NotebookLink(props: { relative: string; openFile: (relative: string) => void }): JSX.Element {
  const name = props.relative.split('/').slice(-3).join('/');
  return (
    <a
      href="#"
      className="pop-Exp-notebook"
      data-notebook={props.relative}
      title={`open ${props.relative}`}
      onClick={event => {
        event.preventDefault();
        props.openFile(props.relative);
      }}
    >
      {name}
    </a>
  );
}

function RunColumn(props: {
  run: ItemRun;
  view: ExperimentItem;
  openFile: (relative: string) => void;
  openJob: (id: string) => void;
}): JSX.Element {
  const { run, view, openFile, openJob } = props;
  if (run.job === null) {
    return (
      <div className="pop-Exp-run" data-variant={run.variant}>
        <h4>{run.variant}</h4>
        <div className="pop-Exp-none">
          not run yet:{' '}
          <code>
            pop experiment run {view.experiment} --only {run.variant}
          </code>
        </div>
      </div>
    );
  }
  const differs = (run.diff?.tasks ?? []).filter(
    t =>
      t.prompt_diff.length ||
      t.changes.length ||
      t.fixed.length ||
      t.new.length ||
      t.a.models.join() !== t.b.models.join()
  );
  return (
    <div className="pop-Exp-run" data-variant={run.variant}>
      <h4>
        {run.variant}
        {run.variant === view.baseline && <span className="pop-Badge pop-Exp-baseline">baseline</span>}
      </h4>
      <div className="pop-Exp-runMeta">
        <a
          href="#"
          title="open the job's view"
          onClick={event => {
            event.preventDefault();
            openJob(run.job!);
          }}
        >
          {run.job}
        </a>{' '}
        · <span className={`pop-Badge pop-state-${run.state}`}>{run.state}</span> · {usd(run.cost_usd)}
      </div>
      <div className="pop-Exp-scores">
        {Object.entries(run.scores).map(([metric, value]) => (
          <span key={metric} style={{ background: heat(value) }} data-metric={metric}>
            {metric} {scoreText(value)}
          </span>
        ))}
      </div>
      {Object.entries(run.outputs).map(([task, output]) => (
        <details key={task} className="pop-Exp-output" open={Object.keys(run.outputs).length <= 2}>
          <summary>{task}</summary>
          <Json value={output} />
        </details>
      ))}
      {run.diff && (
        <div className="pop-Exp-diff">
          <b>against {view.baseline}:</b> {differs.length === 0 ? 'the same' : `${differs.length} tasks differ`}
          {differs.map(t => (
            <DiffOf key={t.task} task={t} openFile={openFile} />
          ))}
        </div>
      )}
      <details className="pop-Exp-notebooks">
        <summary>stage notebooks ({run.notebooks.length})</summary>
        {run.notebooks.map(nb => (
          <div key={nb}>
            <NotebookLink relative={nb} openFile={openFile} />
          </div>
        ))}
      </details>
    </div>
  );
}

function ItemPanel(props: { options: ExperimentViewOptions; item: string; version: number }): JSX.Element {
  const { options, item, version } = props;
  const [view, setView] = useState<ExperimentItem | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    options.api.experimentItem(options.name, item).then(
      found => live && (setView(found), setProblem(null)),
      (reason: unknown) => live && setProblem(reasonText(reason))
    );
    return () => {
      live = false;
    };
  }, [item, version]);
  if (!view || view.item !== item) {
    return <div className="pop-Exp-item">{problem ?? `Loading ${item}…`}</div>;
  }
  const openFile = (relative: string) => {
    // a job's file opens as its record (wherever the job moves); anything else as Lab serves it
    const path = recordOfDataPath(relative) ?? dataFile(view.lab_data, relative);
    if (path !== null) {
      options.open(path);
    }
  };
  return (
    <div className="pop-Exp-item" data-item={item}>
      <h3>
        {item}
        {view.repeat > 0 && ` (repeat ${view.repeat})`}
      </h3>
      <div className="pop-Exp-itemData">
        <div>
          <b>data</b>
          <Json value={view.data} />
        </div>
        <div>
          <b>expected</b>
          <Json value={view.expected} />
        </div>
      </div>
      <div className="pop-Exp-runs">
        {view.runs.map(run => (
          <RunColumn key={run.variant} run={run} view={view} openFile={openFile} openJob={options.openJob} />
        ))}
      </div>
    </div>
  );
}

function ExperimentBody(props: { options: ExperimentViewOptions }): JSX.Element {
  const { options } = props;
  const { name, api, experiments } = options;
  const [detail, setDetail] = useState<ExperimentDetail | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [item, setItem] = useState<string | null>(null);
  const [metric, setMetric] = useState<string>('');
  const [grading, setGrading] = useState(false);
  const [version, bump] = useReducer((n: number) => n + 1, 0);

  useEffect(() => {
    let live = true;
    api.experiment(name).then(
      found => live && (setDetail(found), setProblem(null)),
      (reason: unknown) => live && setProblem(reasonText(reason))
    );
    return () => {
      live = false;
    };
  }, [name, version]);

  useEffect(() => {
    const onChange = (_: unknown, changed: string | null) => {
      if (changed === name || changed === null) {
        bump();
      }
    };
    experiments.experimentChanged.connect(onChange);
    return () => {
      experiments.experimentChanged.disconnect(onChange);
    };
  }, [name]);

  if (!detail) {
    return <div className="pop-ExperimentView-body">{problem ?? `Loading ${name}…`}</div>;
  }
  const { comparison, info } = detail;
  const metrics = [...new Set(comparison.variants.flatMap(v => Object.keys(v.metrics)))];
  const shown = metric && metrics.includes(metric) ? metric : (metrics[0] ?? '');
  const pending = comparison.variants.reduce((n, v) => n + v.pending, 0);
  const regressed = comparison.variants.flatMap(v => v.regressed.map(r => ({ under: v.name, ...r })));
  const rejected = comparison.variants.flatMap(v => v.rejected.map(r => ({ variant: v.name, ...r })));

  const grade = async () => {
    const sure = await showDialog({
      title: `Grade ${pending} pending?`,
      body: 'The judges and scorer notebooks are asked for the grades not kept yet; a judge’s calls are paid for and logged under the experiment.',
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Grade' })]
    });
    if (!sure.button.accept) {
      return;
    }
    setGrading(true);
    try {
      setDetail(await api.score(name));
    } catch (reason) {
      await showErrorMessage(`Could not grade ${name}`, reasonText(reason));
    } finally {
      setGrading(false);
    }
  };

  return (
    <div className="pop-ExperimentView-body">
      <div className="pop-JobView-head">
        <h2>{name}</h2>
        <div className="pop-JobView-meta">
          {comparison.pipeline} · baseline <b>{comparison.baseline}</b> · {comparison.items} items
          {comparison.repeat > 1 && ` × ${comparison.repeat} repeats`} ·{' '}
          {info.lab_file ? (
            <a
              href="#"
              onClick={event => {
                event.preventDefault();
                options.open(info.lab_file!);
              }}
            >
              {info.file}
            </a>
          ) : (
            info.file
          )}
        </div>
      </div>
      <div className="pop-JobView-actions">
        <button className="jp-mod-styled" onClick={() => bump()} title="Compare again">
          ↻ Refresh
        </button>
        {pending > 0 && (
          <button className="jp-mod-styled jp-mod-accept pop-Exp-grade" disabled={grading} onClick={() => void grade()}>
            {grading ? 'Grading…' : `Grade ${pending} pending`}
          </button>
        )}
      </div>
      {problem && <div className="pop-Message pop-Message-error">{problem}</div>}

      <div className="pop-Exp-progress">
        {info.variants.map(v => (
          <span key={v.name} data-variant={v.name}>
            {v.name}: {v.done}/{v.planned} done{v.failed ? `, ${v.failed} failed` : ''}
            {v.running ? `, ${v.running} running` : ''}
            {v.rejected ? `, ${v.rejected} refused` : ''}
          </span>
        ))}
      </div>

      <ComparisonTable detail={detail} metrics={metrics} />
      {pending > 0 && (
        <div className="pop-Exp-pending">
          {pending} grades are not kept yet (a changed rubric, or not compared since the run): the table leaves them out
          until they are graded.
        </div>
      )}

      {regressed.length > 0 && (
        <div className="pop-Exp-regressed">
          <h3>Worst regressions against {comparison.baseline}</h3>
          <ul>
            {regressed.map(r => (
              <li key={`${r.under}/${r.item}`}>
                <a
                  href="#"
                  data-item={r.item}
                  onClick={event => {
                    event.preventDefault();
                    setItem(r.item);
                  }}
                >
                  {r.item}
                </a>{' '}
                under {r.under}: {r.metric} {scoreText(r.baseline)} → {scoreText(r.variant)}
              </li>
            ))}
          </ul>
        </div>
      )}
      {rejected.length > 0 && (
        <details className="pop-Exp-rejected">
          <summary>{rejected.length} items refused by the pipeline (not run)</summary>
          <ul>
            {rejected.slice(0, 50).map(r => (
              <li key={`${r.variant}/${r.item}`}>
                {r.item} ({r.variant}): {r.error}
              </li>
            ))}
          </ul>
        </details>
      )}

      <div className="pop-Exp-split">
        <div className="pop-Exp-items">
          <h3>
            Items by{' '}
            <select
              className="jp-mod-styled"
              aria-label="metric"
              value={shown}
              onChange={event => setMetric(event.target.value)}
            >
              {metrics.map(m => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </h3>
          {detail.items_total > detail.items.length && (
            <div className="pop-Exp-none">
              the first {detail.items.length} of {detail.items_total} items
            </div>
          )}
          <Heat detail={detail} metric={shown} selected={item} select={setItem} />
        </div>
        {item ? (
          <ItemPanel options={options} item={item} version={version} />
        ) : (
          <div className="pop-Exp-item pop-Exp-none">Pick an item to see it under every variant.</div>
        )}
      </div>
    </div>
  );
}

export class ExperimentView extends ReactWidget {
  constructor(readonly options: ExperimentViewOptions) {
    super();
    this.addClass('pop-ExperimentView');
    this.id = `pop-experiment-${options.name}`;
    this.title.label = `${options.name} (experiment)`;
    this.title.caption = `pop-nb experiment ${options.name}`;
    this.title.closable = true;
  }

  render(): JSX.Element {
    return <ExperimentBody options={this.options} />;
  }
}
