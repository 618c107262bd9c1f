/**
 * The `pop-job:` drive: a job's files, read through `/pop/api/jobs/<id>/file` wherever the job's folder
 * is now, and never written (Lab keeps no checkpoints in a job). A record's notebook opens in the
 * {@link RECORD_FACTORY} widget: no kernel, cells locked, and a toolbar whose "Open a copy" asks the
 * server for an editable copy under `scratch/<job id>/` (run by hand, it replays on a scratch copy of
 * the job, as any stage notebook does).
 */

import { showErrorMessage } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { NotebookPanel, NotebookWidgetFactory } from '@jupyterlab/notebook';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { Toolbar, ToolbarButton } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { PopAPI } from './api';
import { reasonText } from './reason';
import { parseRecord, RECORD_DRIVE } from './records';
import { JobFile } from './types';

/** The notebook widget factory of records: no kernel, a toolbar with "Open a copy". */
export const RECORD_FACTORY = 'pop-nb record';

const READ_ONLY =
  "A job's record is read-only: pop-nb keeps what ran as it ran. Use “Open a copy” to change and run it.";

function refuse(): Promise<never> {
  return Promise.reject(new Error(READ_ONLY));
}

/** The `pop-job:` drive: reads through `/pop/api/jobs/<id>/file`, refuses every write. */
export class JobRecordDrive implements Contents.IDrive {
  readonly name = RECORD_DRIVE;
  private _disposed = false;
  private _changed = new Signal<this, Contents.IChangedArgs>(this);

  constructor(private readonly api: PopAPI) {}

  get serverSettings(): ServerConnection.ISettings {
    return this.api.settings;
  }

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const found = parseRecord(localPath);
    if (!found) {
      throw new Error(`${localPath} names no job: a record is pop-job:<job id>/<file in the job>`);
    }
    const model = await this.api.file(found.job, found.relative, options?.content !== false);
    return toContents(model);
  }

  getDownloadUrl(localPath: string): Promise<string> {
    const found = parseRecord(localPath);
    return found
      ? Promise.resolve(this.api.fileUrl(found.job, found.relative))
      : Promise.reject(new Error(`${localPath} names no job`));
  }

  newUntitled(): Promise<Contents.IModel> {
    return refuse();
  }
  delete(): Promise<void> {
    return refuse();
  }
  rename(): Promise<Contents.IModel> {
    return refuse();
  }
  save(): Promise<Contents.IModel> {
    return refuse();
  }
  copy(): Promise<Contents.IModel> {
    return refuse();
  }
  createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return refuse();
  }
  listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return Promise.resolve([]);
  }
  restoreCheckpoint(): Promise<void> {
    return refuse();
  }
  deleteCheckpoint(): Promise<void> {
    return Promise.resolve();
  }
}

function toContents(file: JobFile): Contents.IModel {
  return {
    name: file.name,
    path: file.path,
    type: file.type,
    format: (file.format ?? null) as Contents.FileFormat,
    mimetype: file.mimetype ?? '',
    content: Array.isArray(file.content) ? (file.content as JobFile[]).map(toContents) : file.content,
    writable: false,
    created: file.created,
    last_modified: file.last_modified,
    size: file.size ?? undefined
  };
}

export interface IRecordFactoryOptions {
  api: PopAPI;
  /** Open a file Lab serves (the copy made). */
  open: (path: string) => void;
}

/**
 * A notebook widget factory like Lab's own (`base`: the same rendering, editor and notebook settings)
 * that never starts a kernel, for records. Its toolbar says whose record it is and offers the copy.
 */
export function recordFactory(base: NotebookWidgetFactory, options: IRecordFactoryOptions): NotebookWidgetFactory {
  const factory = new NotebookWidgetFactory({
    name: RECORD_FACTORY,
    label: 'Job record (read-only)',
    fileTypes: ['notebook'],
    modelName: 'notebook',
    preferKernel: false,
    canStartKernel: false,
    rendermime: base.rendermime,
    contentFactory: base.contentFactory,
    mimeTypeService: base.mimeTypeService,
    editorConfig: base.editorConfig,
    notebookConfig: base.notebookConfig,
    toolbarFactory: (panel: NotebookPanel) => recordToolbar(panel, options)
  });
  factory.widgetCreated.connect((_, panel) => {
    panel.addClass('pop-Record');
    lockRecord(panel);
  });
  return factory;
}

/** A record's document is read-only whatever opened it (Save refuses with Lab's own dialog). */
export function lockRecord(widget: { context: DocumentRegistry.Context }): void {
  void widget.context.ready.then(() => {
    widget.context.model.readOnly = true;
  });
}

function recordToolbar(panel: NotebookPanel, options: IRecordFactoryOptions): DocumentRegistry.IToolbarItem[] {
  const found = parseRecord(panel.context.localPath);
  const note = new Widget();
  note.addClass('pop-RecordNote');
  note.node.textContent = found ? `Read-only record of job ${found.job}` : 'Read-only record';
  note.node.title = 'What ran, as it ran: pop-nb wrote it, so its outputs are trusted and it runs no kernel.';
  const copy = new ToolbarButton({
    className: 'pop-OpenCopy',
    label: 'Open a copy to experiment',
    tooltip:
      'Copy this notebook to scratch/<job id>/ and open it with a kernel: run by hand, it replays on a ' +
      "scratch copy of the job (the job's own files are not changed)",
    onClick: () => {
      if (!found) {
        return;
      }
      options.api.copy(found.job, found.relative).then(
        made => {
          if (made.lab_path === null) {
            void showErrorMessage(
              'Open a copy',
              `The copy is at ${made.path}, outside the Jupyter server's root: open it from there.`
            );
          } else {
            options.open(made.lab_path);
          }
        },
        (reason: unknown) => void showErrorMessage('Open a copy', reasonText(reason))
      );
    }
  });
  return [
    { name: 'pop-record', widget: note },
    { name: 'spacer', widget: Toolbar.createSpacerItem() },
    { name: 'pop-copy', widget: copy }
  ];
}
