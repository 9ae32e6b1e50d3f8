import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter } from "react-router";
import { RouterProvider } from "react-router/dom";
import { AppRoutes } from "./App";
import { ToastProvider } from "./components/toast";
import { AuthProvider } from "./lib/auth";
import "./styles.css";

// A data router (not <BrowserRouter>) so that pages can hold a navigation back while they
// have unsaved work (useBlocker: the flow builder), the browser's back button included.
const router = createBrowserRouter([
  {
    path: "*",
    element: (
      <ToastProvider>
        <AuthProvider>
          <AppRoutes />
        </AuthProvider>
      </ToastProvider>
    ),
  },
]);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <RouterProvider router={router} />
  </StrictMode>,
);
