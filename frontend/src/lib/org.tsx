/** The organisation in the URL (`/orgs/:slug/...`) and the signed-in user's role in it. */
import { createContext, useContext } from "react";
import type { Org, OrgRole } from "../api/client";

export interface OrgState {
  org: Org;
  role: OrgRole | null;
  reload: () => void;
}

export const OrgContext = createContext<OrgState | null>(null);

export function useOrg(): OrgState {
  const ctx = useContext(OrgContext);
  if (!ctx) throw new Error("useOrg outside an organisation route");
  return ctx;
}
