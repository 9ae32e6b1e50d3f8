/** Data hooks: one-shot loads, cursor-paginated lists, and form submissions with field errors. */
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, cursorOf, type Page } from "../api/client";

export interface Async<T> {
  data: T | undefined;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
  setData: (update: (current: T | undefined) => T | undefined) => void;
}

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, err instanceof Error ? err.message : String(err), "client");
}

/** Load something once per change of `deps`; ignore answers that arrive after a newer load. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [data, setDataState] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const generation = useRef(0);

  useEffect(() => {
    const mine = ++generation.current;
    setLoading(true);
    setError(null);
    load().then(
      (value) => {
        if (mine !== generation.current) return;
        setDataState(value);
        setLoading(false);
      },
      (err: unknown) => {
        if (mine !== generation.current) return;
        setError(asApiError(err));
        setLoading(false);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  const setData = useCallback((update: (current: T | undefined) => T | undefined) => setDataState(update), []);
  return { data, error, loading, reload, setData };
}

export interface Paged<T> {
  items: T[];
  error: ApiError | null;
  loading: boolean;
  loadingMore: boolean;
  hasMore: boolean;
  loadMore: () => void;
  reload: () => void;
}

/** A cursor-paginated list with "Load more". `load(cursor)` fetches one page. */
export function usePaged<T>(load: (cursor: string | null) => Promise<Page<T>>, deps: unknown[]): Paged<T> {
  const [items, setItems] = useState<T[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [tick, setTick] = useState(0);
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const mine = ++generation.current;
    setLoading(true);
    setError(null);
    loadRef.current(null).then(
      (page) => {
        if (mine !== generation.current) return;
        setItems(page.results);
        setNext(cursorOf(page.next));
        setLoading(false);
      },
      (err: unknown) => {
        if (mine !== generation.current) return;
        setItems([]);
        setNext(null);
        setError(asApiError(err));
        setLoading(false);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);

  const loadMore = useCallback(() => {
    if (!next) return;
    const mine = generation.current;
    setLoadingMore(true);
    loadRef.current(next).then(
      (page) => {
        if (mine !== generation.current) return;
        setItems((all) => [...all, ...page.results]);
        setNext(cursorOf(page.next));
        setLoadingMore(false);
      },
      (err: unknown) => {
        if (mine !== generation.current) return;
        setError(asApiError(err));
        setLoadingMore(false);
      },
    );
  }, [next]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { items, error, loading, loadingMore, hasMore: next !== null, loadMore, reload };
}

export interface Submit {
  busy: boolean;
  /** The server's `detail`, for the alert at the top of the form. */
  error: string | null;
  /** The server's `fields`, keyed by input name. */
  fields: Record<string, string>;
  run: (action: () => Promise<void>) => Promise<boolean>;
  reset: () => void;
}

/**
 * Run a form's action and keep what the server said about it. When every field the server
 * complained about is an input of this form (`inputs`), the messages sit next to those inputs
 * and the alert at the top only points at them instead of repeating them.
 */
export function useSubmit(inputs?: readonly string[]): Submit {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string>>({});
  const run = useCallback(async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setFields({});
    try {
      await action();
      return true;
    } catch (err) {
      const apiError = asApiError(err);
      const keys = Object.keys(apiError.fields);
      // Validation errors ("invalid") have a detail that only lists the field messages.
      const allShown =
        apiError.code === "invalid" && inputs !== undefined && keys.length > 0 && keys.every((k) => inputs.includes(k));
      setError(allShown ? `Please correct the highlighted field${keys.length > 1 ? "s" : ""}.` : apiError.detail);
      setFields(apiError.fields);
      return false;
    } finally {
      setBusy(false);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [inputs?.join()]);
  const reset = useCallback(() => {
    setError(null);
    setFields({});
  }, []);
  return { busy, error, fields, run, reset };
}
