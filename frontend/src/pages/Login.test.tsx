import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ME, installFakeFetch } from "../test/fakeFetch";
import { renderPage } from "../test/render";
import { LoginPage, safeNext } from "./Login";

afterEach(() => vi.unstubAllGlobals());

describe("the login form", () => {
  it("shows the server's message and keeps the user on the page", async () => {
    document.cookie = "csrftoken=t; path=/";
    installFakeFetch({
      "POST /api/auth/login": {
        status: 401,
        body: { detail: "Wrong email or password.", code: "invalid_credentials", fields: {} },
      },
    });
    renderPage(<LoginPage />, { path: "/login" });
    await userEvent.type(screen.getByLabelText("Email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "nope-nope-nope");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("Wrong email or password.");
    expect(screen.getByRole("button", { name: "Log in" })).toBeEnabled();
  });

  it("puts field messages next to the matching input", async () => {
    document.cookie = "csrftoken=t; path=/";
    installFakeFetch({
      "POST /api/auth/login": {
        status: 422,
        body: { detail: "Invalid input — email: not a valid email", code: "invalid", fields: { email: "not a valid email" } },
      },
    });
    renderPage(<LoginPage />, { path: "/login" });
    await userEvent.type(screen.getByLabelText("Email"), "ada");
    await userEvent.type(screen.getByLabelText("Password"), "x");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));

    const email = screen.getByLabelText("Email");
    await waitFor(() => expect(email).toHaveAttribute("aria-invalid", "true"));
    expect(email).toHaveAccessibleDescription("not a valid email");
    expect(screen.getByLabelText("Password")).not.toHaveAttribute("aria-invalid");
    // The message sits by its input; the summary only points there.
    expect(screen.getByTestId("form-error")).toHaveTextContent("Please correct the highlighted field.");
  });

  it("sends the credentials and goes to the console", async () => {
    document.cookie = "csrftoken=t; path=/";
    const { calls } = installFakeFetch({ "POST /api/auth/login": { body: ME } });
    renderPage(<LoginPage />, { path: "/login?next=/orgs/acme/audit" });
    await userEvent.type(screen.getByLabelText("Email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "correct horse");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));

    expect(await screen.findByText("Landed in the console")).toBeInTheDocument();
    expect(calls[0]!.body).toEqual({ email: "ada@example.com", password: "correct horse" });
  });

  it("follows ?next= only to paths of this site", () => {
    expect(safeNext("/orgs/acme/members")).toBe("/orgs/acme/members");
    expect(safeNext("//evil.example/x")).toBe("/");
    expect(safeNext("https://evil.example")).toBe("/");
    expect(safeNext(null)).toBe("/");
  });
});
