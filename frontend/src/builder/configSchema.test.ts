import { describe, expect, it } from "vitest";
import { configUiSchema, secretChoices } from "./configSchema";
import { CATALOGUE } from "./fixtures";

describe("config forms", () => {
  it("makes secret references a vault select", () => {
    const ui = configUiSchema(CATALOGUE.types.get("llm_chat")!.config_schema);
    expect(ui.api_key_secret).toEqual({ "ui:widget": "secretRef" });
    expect(ui.model).toBeUndefined();
  });

  it("finds secrets nested in maps (an HTTP node's secret headers)", () => {
    const ui = configUiSchema({
      type: "object",
      properties: {
        secret_headers: {
          type: "object",
          additionalProperties: { type: "object", properties: { secret: { type: "string" }, prefix: { type: "string" } } },
        },
      },
    });
    expect(ui.secret_headers).toEqual({ additionalProperties: { secret: { "ui:widget": "secretRef" } } });
  });

  it("offers own secrets by name and shared ones as workspace:name", () => {
    expect(secretChoices(["openai"], ["team-key"]).map((c) => c.value)).toEqual(["openai", "workspace:team-key"]);
  });
});
