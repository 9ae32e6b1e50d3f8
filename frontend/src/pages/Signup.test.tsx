import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { installFakeFetch } from "../test/fakeFetch";
import { renderPage } from "../test/render";
import { SignupPage, slugify } from "./Signup";

afterEach(() => vi.unstubAllGlobals());

describe("sign up", () => {
  it("suggests a URL slug from the organisation name until the user edits it", async () => {
    renderPage(<SignupPage />, { path: "/signup" });
    await userEvent.type(screen.getByLabelText("Organisation name"), "Acme Robotics, Inc.");
    const slug = screen.getByLabelText("URL");
    expect(slug).toHaveValue("acme-robotics-inc");
    await userEvent.clear(slug);
    await userEvent.type(slug, "acme");
    await userEvent.type(screen.getByLabelText("Organisation name"), " EU");
    expect(slug).toHaveValue("acme");
  });

  it("shows a taken slug next to the URL field", async () => {
    document.cookie = "csrftoken=t; path=/";
    installFakeFetch({
      "POST /api/auth/signup": {
        status: 409,
        body: { detail: "The URL slug 'acme' is taken. Pick another one.", code: "conflict", fields: { org_slug: "taken" } },
      },
    });
    renderPage(<SignupPage />, { path: "/signup" });
    await userEvent.type(screen.getByLabelText("Organisation name"), "Acme");
    await userEvent.type(screen.getByLabelText("Your name"), "Ada");
    await userEvent.type(screen.getByLabelText("Work email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "a-long-password");
    await userEvent.click(screen.getByRole("button", { name: "Create organisation" }));

    expect(await screen.findByTestId("form-error")).toHaveTextContent("is taken");
    expect(screen.getByLabelText("URL")).toHaveAccessibleDescription(/taken/);
  });

  it("slugify follows the API's rules", () => {
    expect(slugify("  Café Ünïcode -- Team  ")).toBe("cafe-unicode-team");
    expect(slugify("x".repeat(80))).toHaveLength(50);
  });
});
