/** Tables in a card: what the card shows while the rows load or fail, the table itself, and "Load more". */
import type { ReactNode } from "react";
import type { ApiError } from "../api/client";
import type { Paged } from "../lib/hooks";
import { Alert, Button, Spinner } from "./ui";

/** The server's refusal, or a spinner while loading; otherwise whatever `children()` renders. */
export function LoadState({
  error,
  loading,
  children,
}: {
  error: ApiError | null;
  loading: boolean;
  children: () => ReactNode;
}) {
  if (error) {
    return (
      <div className="card-body">
        <Alert>{error.detail}</Alert>
      </div>
    );
  }
  if (loading) return <Spinner />;
  return <>{children()}</>;
}

export interface DataTableProps {
  /** Column headings, in order; a falsy entry leaves its column out. */
  columns: (string | false | null | undefined)[];
  /** Add a last, visually unlabelled "Actions" column for the row buttons. */
  actions?: boolean;
  className?: string;
  testId?: string;
  /** Below the table, inside its scroll wrapper (e.g. `<LoadMore>`). */
  footer?: ReactNode;
  /** The `<tr>` rows. */
  children: ReactNode;
}

export function DataTable({ columns, actions, className = "table", testId, footer, children }: DataTableProps) {
  return (
    <div className="table-wrap">
      <table className={className} data-testid={testId}>
        <thead>
          <tr>
            {columns.filter(Boolean).map((column) => (
              <th key={column as string}>{column}</th>
            ))}
            {actions ? (
              <th className="actions">
                <span className="sr-only">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
      {footer}
    </div>
  );
}

/** The "Load more" button of a cursor-paginated list, while there is more. */
export function LoadMore({ list }: { list: Pick<Paged<unknown>, "hasMore" | "loadMore" | "loadingMore"> }) {
  return list.hasMore ? (
    <div className="table-foot">
      <Button onClick={list.loadMore} busy={list.loadingMore}>
        Load more
      </Button>
    </div>
  ) : null;
}

/** A `usePaged` list as a table: error, spinner, `empty` when there are no rows, else the rows and "Load more". */
export function PagedTable<T>({
  list,
  empty,
  row,
  ...table
}: {
  list: Paged<T>;
  empty: ReactNode;
  row: (item: T) => ReactNode;
} & Omit<DataTableProps, "children" | "footer">) {
  return (
    <LoadState error={list.error} loading={list.loading}>
      {() =>
        list.items.length === 0 ? (
          empty
        ) : (
          <DataTable {...table} footer={<LoadMore list={list} />}>
            {list.items.map((item) => row(item))}
          </DataTable>
        )
      }
    </LoadState>
  );
}
