import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes } from "react-router";
import type { Me, Org, OrgRole } from "../api/client";
import { ToastProvider } from "../components/toast";
import { AuthProvider } from "../lib/auth";
import { OrgContext } from "../lib/org";

/** Render a page the way the app does: router, toasts, auth (and an organisation). */
export function renderPage(
  element: ReactElement,
  { path = "/", me = null, org, role }: { path?: string; me?: Me | null; org?: Partial<Org>; role?: OrgRole | null } = {},
) {
  const orgValue: Org = { id: "o-1", name: "Acme", slug: "acme", created_at: "2026-01-01T00:00:00Z", role: role ?? null, ...org };
  return render(
    <MemoryRouter initialEntries={[path]}>
      <ToastProvider>
        <AuthProvider initial={me}>
          <OrgContext.Provider value={{ org: orgValue, role: role ?? null, reload: () => undefined }}>
            <Routes>
              <Route path="*" element={element} />
              <Route path="/orgs/:slug/*" element={<p>Landed in the console</p>} />
            </Routes>
          </OrgContext.Provider>
        </AuthProvider>
      </ToastProvider>
    </MemoryRouter>,
  );
}
