/** The organisation's workspaces for pickers and for showing a workspace id by its name. */
import { useMemo } from "react";
import { api, call, type Workspace } from "../api/client";
import { useAsync } from "./hooks";

const NONE: Workspace[] = [];

/** Up to 200 workspaces of `orgSlug` (archived ones too with `includeArchived`), and their names by id. */
export function useWorkspaceNames(orgSlug: string, { includeArchived = false }: { includeArchived?: boolean } = {}) {
  const loaded = useAsync(
    () =>
      call(() =>
        api.GET("/api/orgs/{org_slug}/workspaces", {
          params: {
            path: { org_slug: orgSlug },
            query: includeArchived ? { include_archived: true, page_size: 200 } : { page_size: 200 },
          },
        }),
      ),
    [orgSlug, includeArchived],
  );
  const workspaces = loaded.data?.results ?? NONE;
  const names = useMemo(() => new Map(workspaces.map((w) => [w.id, w.name])), [workspaces]);
  return { workspaces, names };
}
