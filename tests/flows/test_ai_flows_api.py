"""AI flows through the API on a real worker: an agent whose tools are flows of the workspace
(pinned into the run like any called flow), and an LLM streaming into a stream flat-map."""

from typing import Any

import pytest

from tests.factories import OrgFixture
from tests.flows.test_flows_api import base, create_flow, wait_run


def _named_flow(client: Any, org: OrgFixture, name: str, document: dict[str, Any]) -> str:
    response = client.post(
        f"{base(org)}/flows", {"name": name, "document": document}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


FORECAST = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "city", "type": "text"}]}},
        {"id": "say", "type": "template", "config": {"template": "Sunny in {{ city }}"}},
        {"id": "out", "type": "output", "config": {"name": "forecast"}},
    ],
    "edges": [{"from": "inp.city", "to": "say.city"}, {"from": "say.text", "to": "out.value"}],
}


@pytest.mark.django_db(transaction=True)
def test_an_agent_calls_a_flow_of_the_workspace_as_a_tool(
    engine_worker: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    tool_flow = _named_flow(client, org, "Forecast", FORECAST)
    agent = {
        "schema": 1,
        "nodes": [
            {"id": "q", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
            {
                "id": "agent",
                "type": "agent",
                "config": {
                    "provider": "fake",
                    "model": "fake-echo",
                    "tools": [
                        {
                            "name": "forecast",
                            "description": "The weather in a city",
                            "parameters": {
                                "type": "object",
                                "required": ["city"],
                                "properties": {"city": {"type": "string"}},
                            },
                            "flow_id": tool_flow,
                        }
                    ],
                },
            },
            {"id": "out", "type": "output", "config": {"name": "answer"}},
        ],
        "edges": [{"from": "q.q", "to": "agent.prompt"}, {"from": "agent.text", "to": "out.value"}],
    }
    flow_id = create_flow(client, org, agent)
    fake_llm.script.add(
        "weather in lisbon", tool_call={"name": "forecast", "arguments": {"city": "Lisbon"}}
    )
    run = client.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "What is the weather in Lisbon?"}},
        content_type="application/json",
    ).json()
    done = wait_run(client, org, run["id"])
    assert done["status"] == "completed", done["error"]
    assert "Sunny in Lisbon" in done["outputs"]["answer"]

    events = client.get(f"{base(org)}/runs/{run['id']}/events").json()
    kinds = [e["type"] for e in events if e["type"].startswith("TOOL_CALL")]
    assert kinds[0] == "TOOL_CALL_START"
    assert kinds[-1] == "TOOL_CALL_RESULT"
    [result] = [e["payload"] for e in events if e["type"] == "TOOL_CALL_RESULT"]
    assert result["result"] == {"forecast": "Sunny in Lisbon"}
    usage = client.get(f"{base(org)}/runs/{run['id']}/usage").json()
    assert [c["call_index"] for c in usage["calls"]] == [1, 2]  # asked, then answered


@pytest.mark.django_db(transaction=True)
def test_an_llm_streams_lines_into_a_flat_map_of_a_workspace_flow(
    engine_worker: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    per_city = _named_flow(client, org, "Forecast", FORECAST)
    document = {
        "schema": 1,
        "nodes": [
            {"id": "q", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
            {"id": "llm", "type": "llm_chat", "config": {"provider": "fake", "model": "fake-echo"}},
            {
                "id": "each",
                "type": "stream_flat_map",
                "config": {"flow_id": per_city, "item_input": "city", "result_output": "forecast"},
            },
            {"id": "out", "type": "output", "config": {"name": "forecasts"}},
        ],
        "edges": [
            {"from": "q.q", "to": "llm.prompt"},
            {"from": "llm.stream", "to": "each.stream"},
            {"from": "each.results", "to": "out.value"},
        ],
    }
    flow_id = create_flow(client, org, document)
    fake_llm.script.add("three cities", reply="Oslo\nLima\nPune\n")
    run = client.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "Name three cities"}},
        content_type="application/json",
    ).json()
    done = wait_run(client, org, run["id"])
    assert done["status"] == "completed", done["error"]
    assert done["outputs"] == {"forecasts": ["Sunny in Oslo", "Sunny in Lima", "Sunny in Pune"]}
