"""Node rules: which node types the members of a workspace may use, per workspace role.

Pure Python (no ORM): the API checks them when a flow version is saved or a run starts,
and the worker (flows.adapters.WorkspacePolicy) again when each node runs.

A rule is ``{"node_type": "<type>" | "*", "roles": [...], "effect": "deny" | "allow",
"providers": [...] | None}``. It applies to a person through their role in the workspace:
for a save, the author's; for a run, both the flow version's author's and the caller's
(a node is refused if it is refused for either). Someone who holds no role in the workspace
any more is held to the rules of every role.

How a node of type T is decided for a role R (the most specific rules decide, then deny
wins):
1. The rules for R naming T exactly are looked at first, then those for R naming "*".
2. At each of these two levels, a deny rule that matches the node refuses it; otherwise,
   if the level has allow rules, they are an allow list: the node is allowed if one of
   them matches it and refused if none does; a level with neither passes to the next.
3. No rule decided: the node is allowed. No rules at all: everything is allowed.

`providers` narrows a rule to model-calling node types (those whose config names a
`provider`: llm_chat, agent, structured_output): an allow rule with providers allows such a
node only with one of them ("only approved providers"), a deny rule with providers refuses
it only with one of them. A rule with providers does not concern other node types.

So "deny * to editors" plus "allow llm_chat to editors" lets editors use llm_chat only,
and "allow llm_chat to editors, providers [openai]" leaves every other node type alone."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import engine
from engine.llm import PROVIDERS
from tenants.roles import (
    OrgRole,
    WorkspaceRole,
    effective_org_role,
    effective_workspace_role,
    min_workspace_role,
    workspace_role_from_perms,
)

ROLES = ("owner", "editor", "viewer")
ANY_TYPE = "*"


def calls_a_model(node_type: str) -> bool:
    """True for node types whose config names the LLM provider they call."""
    cls = engine.node_type(node_type)
    return cls is not None and "provider" in cls.config_schema.get("properties", {})


def check_rules(rules: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rules in their stored form, and what is wrong with them (field -> message, e.g.
    ``node_rules.2.node_type``), checked against the node types and providers installed."""
    cleaned: list[dict[str, Any]] = []
    problems: dict[str, str] = {}
    for index, rule in enumerate(rules):
        at = f"node_rules.{index}"
        node_type = str(rule.get("node_type", "")).strip()
        if node_type != ANY_TYPE and engine.node_type(node_type) is None:
            problems[f"{at}.node_type"] = (
                f"unknown node type '{node_type}': use one of the types listed by "
                "GET /api/node-types, or '*' for every type"
            )
        given_roles = [str(r) for r in rule.get("roles") or ()]
        unknown_roles = [r for r in given_roles if r not in ROLES]
        roles = sorted({r for r in given_roles if r in ROLES}, key=ROLES.index)
        if unknown_roles:
            problems[f"{at}.roles"] = f"unknown role {unknown_roles[0]!r}: use {', '.join(ROLES)}"
        elif not roles:
            problems[f"{at}.roles"] = f"name at least one role ({', '.join(ROLES)})"
        effect = str(rule.get("effect", ""))
        if effect not in ("deny", "allow"):
            problems[f"{at}.effect"] = "use 'deny' or 'allow'"
        raw_providers = rule.get("providers")
        providers = None if raw_providers is None else sorted({str(p) for p in raw_providers})
        unknown = [p for p in providers or () if p not in PROVIDERS]
        if providers is None:
            pass
        elif not providers:
            problems[f"{at}.providers"] = (
                "an empty provider list would match nothing: leave 'providers' out (null) to "
                "match every provider"
            )
        elif unknown:
            problems[f"{at}.providers"] = (
                f"unknown provider{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(p) for p in unknown)}: use {', '.join(PROVIDERS)}"
            )
        elif node_type != ANY_TYPE and engine.node_type(node_type) and not calls_a_model(node_type):
            problems[f"{at}.providers"] = (
                f"'{node_type}' calls no model: providers apply only to node types that call "
                "one (llm_chat, agent, structured_output)"
            )
        cleaned.append(
            {
                "node_type": node_type,
                "roles": roles,
                "effect": effect,
                "providers": providers,
            }
        )
    return cleaned, problems


@dataclass(frozen=True)
class Refusal:
    """Why a node may not be used: the rule (its index in the list) and what it says."""

    index: int
    rule: Mapping[str, Any]
    role: str

    def describe(self, provider: str | None) -> str:
        rule = self.rule
        scope = "every node type" if rule["node_type"] == ANY_TYPE else f"'{rule['node_type']}'"
        listed = ", ".join(rule.get("providers") or ())
        if rule["effect"] == "deny":
            text = f"node rule #{self.index} denies {scope} to {self.role}s"
            return text + (
                f" with provider {listed} (this node calls '{provider}')" if listed else ""
            )
        # An allow list that does not take this node always names providers.
        return (
            f"node rule #{self.index} allows {scope} to {self.role}s only with provider "
            f"{listed}, and this node calls '{provider}'"
        )


def refusal(
    rules: Sequence[Mapping[str, Any]], node_type: str, config: Mapping[str, Any], role: str | None
) -> Refusal | None:
    """The rule refusing a node of `node_type` (with `config`) to someone holding `role`
    (None: no role in the workspace, held to every role's rules); None if it is allowed."""
    if not rules:
        return None
    for each in ROLES if role is None else (role,):
        found = _refusal_for_role(rules, node_type, config, each)
        if found is not None:
            return found
    return None


def _refusal_for_role(
    rules: Sequence[Mapping[str, Any]], node_type: str, config: Mapping[str, Any], role: str
) -> Refusal | None:
    model_calling = calls_a_model(node_type)
    provider = str(config.get("provider", "")) if model_calling else ""
    for level in (node_type, ANY_TYPE):
        concerned = [
            (index, rule)
            for index, rule in enumerate(rules)
            if rule.get("node_type") == level
            and role in rule.get("roles", ())
            and (rule.get("providers") is None or model_calling)
        ]
        for index, rule in concerned:
            if rule.get("effect") == "deny" and _matches(rule, provider):
                return Refusal(index, rule, role)
        allows = [(index, rule) for index, rule in concerned if rule.get("effect") == "allow"]
        if allows:
            if any(_matches(rule, provider) for _, rule in allows):
                return None
            return Refusal(allows[0][0], allows[0][1], role)
    return None


def _matches(rule: Mapping[str, Any], provider: str) -> bool:
    providers = rule.get("providers")
    return providers is None or provider in providers


def refusal_message(
    found: Refusal, node_id: str, node_type: str, config: Mapping[str, Any], whose: str
) -> str:
    """What a user reads when a node is refused: which node, which rule, what to do."""
    provider = str(config.get("provider", "")) if calls_a_model(node_type) else None
    return (
        f"Node '{node_id}' ({node_type}) may not be used by {whose}: "
        f"{found.describe(provider)}. Remove the node or change it to what the rules allow, "
        "or ask a workspace owner to change the node rules."
    )


def document_refusals(
    rules: Sequence[Mapping[str, Any]],
    document: Mapping[str, Any],
    people: Sequence[tuple[str, str | None]],
) -> dict[str, str]:
    """Every node of `document` the rules refuse to one of `people` ((who, role) pairs, e.g.
    ("you (editor)", "editor")): node id -> message."""
    refused: dict[str, str] = {}
    if not rules:
        return refused
    for node in document.get("nodes", ()):
        if not isinstance(node, Mapping):
            continue
        node_id = str(node.get("id"))
        for label, node_type, config in _judged(node_id, node):
            message = next(
                (
                    refusal_message(found, label, node_type, config, whose)
                    for whose, role in people
                    if (found := refusal(rules, node_type, config, role)) is not None
                ),
                None,
            )
            if message is not None:
                refused[node_id] = message
                break
    return refused


def _judged(
    label: str, node: Mapping[str, Any], depth: int = 0
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """The node, then the nodes it runs as part of itself (an agent's node tools, and
    theirs), as (label, type, config)."""
    node_type = str(node.get("type", ""))
    raw_config = node.get("config")
    config: Mapping[str, Any] = raw_config if isinstance(raw_config, Mapping) else {}
    judged = [(label, node_type, config)]
    cls = engine.node_type(node_type)
    if cls is None or depth >= _MAX_NESTING:
        return judged
    try:
        inner = cls.inner_nodes(config)
    except Exception:  # a config that does not fit its schema: the node is judged as it is
        inner = []
    for sub in inner:
        judged += _judged(f"{label}.{sub.get('id')}", sub, depth + 1)
    return judged


_MAX_NESTING = 4  # an agent whose node tool is an agent with node tools, and so on


def role_in_workspace(
    org_role: str | None,
    permissions: Iterable[str],
    key_cap: tuple[str, bool] | None = None,
) -> str | None:
    """The workspace role of someone holding `org_role` in the workspace's organisation and
    the guardian `permissions` on it, acting through an API key capped at `key_cap` ((role,
    whether the key is scoped to a workspace)), as tenants.access resolves it."""
    try:
        acting: OrgRole | None = OrgRole(org_role or "")
        given = workspace_role_from_perms(frozenset(permissions))
        if key_cap is not None and not key_cap[1]:
            acting = effective_org_role(OrgRole(org_role or ""), OrgRole(key_cap[0]))
        role = effective_workspace_role(acting, given)
        if key_cap is not None and key_cap[1]:
            role = min_workspace_role(role, WorkspaceRole(key_cap[0]))
    except ValueError:  # a role this code does not know: no role (every role's rules)
        return None
    return role.value if role is not None else None
