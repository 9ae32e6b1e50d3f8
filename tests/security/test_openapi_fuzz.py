"""Schemathesis fuzzes every operation of /api/openapi.json through the WSGI app, against the
real database, as the owner of an organisation (bearer API key): no answer is a 5xx, every
answer's status is documented and its body fits the schema."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from fireflow.wsgi import application
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import make_api_key, make_invitation, make_org

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
    checks.content_type_conformance,
]


@pytest.fixture
def owner_world(transactional_db: None, settings: Any) -> dict[str, Any]:
    """An organisation whose owner's key the fuzzer uses, and real ids for path parameters
    (so generated requests reach past the 404 of unknown objects)."""
    settings.RATE_LIMITS = {"signup": "1000/m", "login": "1000/m", "password_reset": "1000/m"}
    fx = make_org()
    member = fx.add_member(OrgRole.MEMBER)
    fx.grant(member, WorkspaceRole.VIEWER)
    invitation, _ = make_invitation(fx)
    spare, _ = make_api_key(fx.owner, fx.org, name="spare")
    _key, raw = make_api_key(fx.owner, fx.org, role=OrgRole.OWNER, name="fuzzer")
    return {
        "auth": f"Bearer {raw}",
        "ids": {
            "org_slug": fx.org.slug,
            "ws_id": str(fx.workspace.id),
            "member_id": str(fx.org.memberships.get(user=member).id),
            "user_id": str(member.id),
            "invitation_id": str(invitation.id),
            "key_id": str(spare.id),
        },
    }


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms_to_its_schema(case: Any, owner_world: dict[str, Any]) -> None:
    for name, value in owner_world["ids"].items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
    case.call_and_validate(headers={"Authorization": owner_world["auth"]}, checks=CHECKS)
