/**
 * pop-nb in JupyterLab: the Pipelines panel (left sidebar), a view per job and per experiment in the
 * main area, and the "Run pipeline" command (palette and launcher).
 */

import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, Notification, showErrorMessage, WidgetTracker } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, INotebookWidgetFactory, NotebookPanel, NotebookWidgetFactory } from '@jupyterlab/notebook';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { PopAPI } from './api';
import { ExperimentsModel } from './experiments';
import { SchedulesModel } from './schedules';
import { ExperimentView } from './experimentview';
import { JobRecordDrive, lockRecord, recordFactory, RECORD_FACTORY } from './drive';
import { JobsTable } from './jobstable';
import { JobView } from './jobview';
import { JobsModel } from './model';
import { PipelinesPanel } from './panel';
import { NoticeKind, pipelineOfPath } from './state';
import { runPipelineDialog } from './runform';
import { reasonText } from './reason';
import { RECORD_DRIVE } from './records';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
  '<rect x="2" y="4" width="6" height="4" rx="1"/><rect x="9" y="10" width="6" height="4" rx="1"/>' +
  '<rect x="16" y="16" width="6" height="4" rx="1"/><path d="M5 8v4h4v1H4V8zm7 6v4h4v1h-5v-5z"/></g></svg>';

export const pipelinesIcon = new LabIcon({ name: 'pop-nb:pipelines', svgstr: ICON_SVG });

const NOTIFICATION_TYPE: Record<NoticeKind, 'error' | 'warning' | 'info' | 'success'> = {
  failed: 'error',
  cancelled: 'warning',
  waiting: 'info',
  done: 'success'
};

export const CommandIDs = {
  run: 'pop:run-pipeline',
  openJob: 'pop:open-job',
  openExperiment: 'pop:open-experiment',
  openJobsTable: 'pop:open-jobs-table',
  runFromFile: 'pop:run-pipeline-of-file',
  showPanel: 'pop:show-panel'
} as const;

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'pop-nb:plugin',
  description: 'Live pop-nb jobs, job views that open stage notebooks in tabs, and a Run pipeline command.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [
    ICommandPalette,
    ILauncher,
    ILayoutRestorer,
    ILabShell,
    ISettingRegistry,
    IFileBrowserFactory,
    INotebookWidgetFactory,
    IRenderMimeRegistry
  ],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null,
    _labShell: ILabShell | null,
    settingRegistry: ISettingRegistry | null,
    browsers: IFileBrowserFactory | null,
    notebooks: NotebookWidgetFactory.IFactory | null,
    rendermime: IRenderMimeRegistry | null
  ) => {
    const api = new PopAPI(app.serviceManager.serverSettings);
    const model = new JobsModel(api);
    const experiments = new ExperimentsModel(api, model);
    const schedules = new SchedulesModel(api, model);
    const tracker = new WidgetTracker<MainAreaWidget<JobView>>({ namespace: 'pop-job' });
    const experimentTracker = new WidgetTracker<MainAreaWidget<ExperimentView>>({ namespace: 'pop-experiment' });
    // a job's files are read through the pop-job: drive, by job id: valid wherever the job moves
    app.serviceManager.contents.addDrive(new JobRecordDrive(api));
    let recordNotebook: string | undefined;
    const open = (path: string) => {
      const lower = path.toLowerCase();
      const record = path.startsWith(`${RECORD_DRIVE}:`);
      // Markdown a job wrote (a product, a report) opens rendered, as a reader wants it
      const factory = lower.endsWith('.md')
        ? 'Markdown Preview'
        : record && lower.endsWith('.ipynb')
          ? recordNotebook
          : undefined;
      // (a tab keeps the file's name: Lab reads a new label as a rename; its caption has the whole path)
      const widget = docManager.openOrReveal(path, factory);
      if (widget && record) {
        lockRecord(widget);
      }
    };
    if (notebooks) {
      // Lab's notebook factory is a NotebookWidgetFactory: the record's reuses its rendering and settings
      const factory = recordFactory(notebooks as NotebookWidgetFactory, { api, open });
      app.docRegistry.addWidgetFactory(factory);
      // a factory's widgets are put back after a reload by its own tracker
      const records = new WidgetTracker<NotebookPanel>({ namespace: 'pop-record' });
      factory.widgetCreated.connect((_, panel) => void records.add(panel));
      void restorer?.restore(records, {
        command: 'docmanager:open',
        args: panel => ({ path: panel.context.path, factory: RECORD_FACTORY }),
        name: panel => panel.context.path
      });
      recordNotebook = RECORD_FACTORY;
    }

    const openJob = (id: string) => void app.commands.execute(CommandIDs.openJob, { id });
    const runAgain = (pipeline: string, seed: string) => void app.commands.execute(CommandIDs.run, { pipeline, seed });
    const panel = new PipelinesPanel(model, experiments, schedules, {
      openJob,
      openExperiment: name => void app.commands.execute(CommandIDs.openExperiment, { name }),
      runPipeline: () => void app.commands.execute(CommandIDs.run),
      openTable: () => void app.commands.execute(CommandIDs.openJobsTable)
    });
    panel.title.icon = pipelinesIcon;
    app.shell.add(panel, 'left', { rank: 300 });
    restorer?.add(panel, 'pop-pipelines');
    model.start();
    void experiments.refresh();
    void schedules.refresh();

    // a job that fails, is cancelled or stops at a gate (or, when asked, finishes): a notification with
    // a button to it, and a count on the Pipelines icon until the panel is looked at
    const notify = { notify: true, notifyDone: false };
    if (settingRegistry) {
      void settingRegistry.load(plugin.id).then(
        settings => {
          const read = () => {
            notify.notify = settings.get('notify').composite !== false;
            notify.notifyDone = settings.get('notifyDone').composite === true;
          };
          read();
          settings.changed.connect(read);
        },
        () => undefined // no settings (a build without its schema): the defaults stand
      );
    }
    model.noticed.connect((_, notice) => {
      if (!notify.notify || (notice.kind === 'done' && !notify.notifyDone)) {
        return;
      }
      Notification.emit(notice.text, NOTIFICATION_TYPE[notice.kind], {
        autoClose: notice.kind === 'done' ? 6000 : false,
        actions: [{ label: 'Open job', callback: () => openJob(notice.job.id), displayType: 'accent' }]
      });
      panel.noticed();
    });

    /** The main-area view `id` of `views`: revealed if open, else made by ``make`` and shown. */
    function reveal<T extends Widget>(
      views: WidgetTracker<MainAreaWidget<T>>,
      id: string,
      label: string,
      make: () => T
    ): MainAreaWidget<T> {
      const existing = views.find(w => w.id === id);
      if (existing) {
        app.shell.activateById(existing.id);
        return existing;
      }
      const widget = new MainAreaWidget({ content: make() });
      widget.id = id;
      widget.title.label = label;
      widget.title.icon = pipelinesIcon;
      widget.title.closable = true;
      void views.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    }

    app.commands.addCommand(CommandIDs.openJob, {
      label: args => (typeof args.id === 'string' && args.id ? `Open pop-nb job ${args.id}` : 'Open pop-nb job'),
      execute: args => {
        const id = typeof args.id === 'string' ? args.id : '';
        return id
          ? reveal(tracker, `pop-job-${id}`, id, () => new JobView({ id, api, model, open, rendermime, runAgain }))
          : undefined;
      }
    });

    app.commands.addCommand(CommandIDs.openExperiment, {
      label: args =>
        typeof args.name === 'string' && args.name ? `Open pop-nb experiment ${args.name}` : 'Open pop-nb experiment',
      execute: args => {
        const name = typeof args.name === 'string' ? args.name : '';
        const make = () => new ExperimentView({ name, api, experiments, open, openJob });
        return name ? reveal(experimentTracker, `pop-experiment-${name}`, `${name} (experiment)`, make) : undefined;
      }
    });

    const tableTracker = new WidgetTracker<MainAreaWidget<JobsTable>>({ namespace: 'pop-jobs-table' });
    app.commands.addCommand(CommandIDs.openJobsTable, {
      label: 'Open the jobs table',
      caption: 'Every pop-nb job in a sortable table (created, started, ended, duration, cost, state)',
      execute: () => reveal(tableTracker, 'pop-jobs-table', 'pop-nb jobs', () => new JobsTable({ api, model, openJob }))
    });

    app.commands.addCommand(CommandIDs.run, {
      label: 'Run pipeline…',
      caption: 'Start a pop-nb pipeline on a seed',
      icon: args => (args.isPalette ? undefined : pipelinesIcon),
      execute: async args => {
        try {
          const id = await runPipelineDialog(
            api,
            typeof args.pipeline === 'string' ? args.pipeline : undefined,
            typeof args.seed === 'string' ? args.seed : undefined
          );
          if (id) {
            app.shell.activateById(panel.id);
            await app.commands.execute(CommandIDs.openJob, { id });
          }
        } catch (reason) {
          await showErrorMessage('Run pipeline', reasonText(reason));
        }
      }
    });

    // the file browser's context menu on a pipeline.yaml or a task notebook: run that pipeline
    const selectedPipeline = (): string | null => {
      const item = browsers?.tracker.currentWidget?.selectedItems().next();
      return item && !item.done ? pipelineOfPath(item.value.path) : null;
    };
    app.commands.addCommand(CommandIDs.runFromFile, {
      label: () => `Run pipeline ${selectedPipeline() ?? ''}…`.replace('  ', ' '),
      caption: 'Start the pipeline this file belongs to, on a seed',
      icon: pipelinesIcon,
      isVisible: () => selectedPipeline() !== null,
      execute: () => app.commands.execute(CommandIDs.run, { pipeline: selectedPipeline() ?? '' })
    });
    app.contextMenu.addItem({
      command: CommandIDs.runFromFile,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3
    });

    // a task notebook's toolbar: run the pipeline it belongs to (jupyter-scheduler's "Create job")
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>) => {
        const slug = context.path.includes(':') ? null : pipelineOfPath(context.path);
        if (!slug) {
          return;
        }
        const button = new ToolbarButton({
          className: 'pop-RunFromNotebook',
          icon: pipelinesIcon,
          label: 'Run pipeline…',
          tooltip: `Start pipeline ${slug} on a seed (this notebook is one of its tasks)`,
          onClick: () => void app.commands.execute(CommandIDs.run, { pipeline: slug })
        });
        panel.toolbar.addItem('pop-run', button);
        return button;
      }
    });

    app.commands.addCommand(CommandIDs.showPanel, {
      label: 'Show Pipelines panel',
      execute: () => app.shell.activateById(panel.id)
    });

    palette?.addItem({ command: CommandIDs.run, category: 'pop-nb' });
    palette?.addItem({ command: CommandIDs.showPanel, category: 'pop-nb' });
    palette?.addItem({ command: CommandIDs.openJobsTable, category: 'pop-nb' });
    launcher?.add({ command: CommandIDs.run, category: 'Other', rank: 1 });

    if (restorer) {
      void restorer.restore(tracker, {
        command: CommandIDs.openJob,
        args: widget => ({ id: widget.content.options.id }),
        name: widget => widget.content.options.id
      });
      void restorer.restore(experimentTracker, {
        command: CommandIDs.openExperiment,
        args: widget => ({ name: widget.content.options.name }),
        name: widget => widget.content.options.name
      });
      void restorer.restore(tableTracker, { command: CommandIDs.openJobsTable, name: () => 'jobs' });
    }
  }
};

export default plugin;
