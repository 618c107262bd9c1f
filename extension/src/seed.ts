/** The seed form's text, as plain functions. */

import { reasonText } from './reason';
import { PipelineInfo } from './types';

/** The seed the text holds, or why it is not one. */
export function parseSeed(text: string): { seed: Record<string, unknown> | null; problem: string | null } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (reason) {
    return { seed: null, problem: `not JSON: ${reasonText(reason)}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { seed: null, problem: 'a seed is a JSON object: {"data": {...}}' };
  }
  return { seed: value as Record<string, unknown>, problem: null };
}

/** A seed as the form shows it: without its pipeline key (the form says which pipeline). */
export function seedText(seed: Record<string, unknown>): string {
  const shown = { ...seed };
  delete shown.pipeline;
  return JSON.stringify(shown, null, 2);
}

/** The text a pipeline's form starts with: its first example seed, else an empty one. */
export function startingText(pipeline: PipelineInfo | undefined): string {
  const first = pipeline ? Object.values(pipeline.examples)[0] : undefined;
  return seedText(first ?? { data: {} });
}
