/** What a caught reason says, whatever was thrown (an Error, a string, anything else). */
export function reasonText(reason: unknown): string {
  if (reason instanceof Error) {
    return reason.message;
  }
  if (typeof reason === 'object' && reason !== null && 'message' in reason && typeof reason.message === 'string') {
    return reason.message;
  }
  return String(reason);
}
