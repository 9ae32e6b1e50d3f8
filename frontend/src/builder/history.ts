/**
 * Undo and redo over snapshots of the flow. Edits of the same kind in a row (typing in one
 * node's config) share a `group` and become one step.
 */

export interface History<T> {
  past: T[];
  present: T;
  future: T[];
  group: string | null;
}

export const HISTORY_LIMIT = 100;

export function historyStart<T>(present: T): History<T> {
  return { past: [], present, future: [], group: null };
}

/** Record `next` as the new present; `group` merges it into the last step when that had the same group. */
export function historyPush<T>(history: History<T>, next: T, group: string | null = null): History<T> {
  if (JSON.stringify(next) === JSON.stringify(history.present)) return history;
  if (group !== null && group === history.group) {
    return { ...history, present: next, future: [] };
  }
  return {
    past: [...history.past, history.present].slice(-HISTORY_LIMIT),
    present: next,
    future: [],
    group,
  };
}

export function historyUndo<T>(history: History<T>): History<T> {
  const previous = history.past[history.past.length - 1];
  if (previous === undefined) return history;
  return { past: history.past.slice(0, -1), present: previous, future: [history.present, ...history.future], group: null };
}

export function historyRedo<T>(history: History<T>): History<T> {
  const [next, ...rest] = history.future;
  if (next === undefined) return history;
  return { past: [...history.past, history.present], present: next, future: rest, group: null };
}
