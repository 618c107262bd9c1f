/**
 * How Lab names a job's files: `pop-job:<job id>/<path in the job>` (the drive in `drive.ts`), never by
 * the job's folder. The folder moves (current/ -> complete/ or failed/, and back on resume); the name
 * does not, so a tab opened while the job ran still reads, and is restored after a reload, when the job
 * has ended.
 */

export const RECORD_DRIVE = 'pop-job';

/** The Lab path of a job's file (`relative` to the job's folder). */
export function recordPath(jobId: string, relative: string): string {
  return `${RECORD_DRIVE}:${jobId}/${relative}`;
}

/**
 * The Lab path of a file named relative to the data folder (`complete/<id>/tasks/...`, as an
 * experiment's runs name their notebooks), or null when it is not in a job.
 */
export function recordOfDataPath(relative: string): string | null {
  const match = /^(?:current|complete|failed)\/([A-Za-z0-9][A-Za-z0-9_-]{0,127})\/(.+)$/.exec(relative);
  return match ? recordPath(match[1], match[2]) : null;
}

/** A drive path split into the job and the file in it (`null`: not a record). */
export function parseRecord(path: string): { job: string; relative: string } | null {
  const local = path.startsWith(`${RECORD_DRIVE}:`) ? path.slice(RECORD_DRIVE.length + 1) : path;
  const match = /^\/?([A-Za-z0-9][A-Za-z0-9_-]{0,127})(?:\/(.*))?$/.exec(local);
  return match ? { job: match[1], relative: match[2] ?? '' } : null;
}
