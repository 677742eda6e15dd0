from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import MembershipFactory, TeamFactory, UserFactory
from workflows.models import Team, Workflow
from workflows.services.definitions import workflows_load

FLOW = """\
slug: billing-disputes
name: Billing disputes
owner: billing
fallback_owners: [finance-ops]
routes:
  - {name: big, when: 'has(payload.amount) && payload.amount > 1000', owner: finance-ops}
action: {type: none}
sla: {acknowledge_within: 30m, resolve_within: 4h}
"""


@pytest.fixture
def roles(db: None) -> dict[str, Any]:
    """One person per role: ada (admin), marcus (manager), olivia (operator), avery (auditor)."""
    return {
        "admin": UserFactory(username="ada", roles=["admin"]),
        "manager": UserFactory(username="marcus", roles=["manager"]),
        "operator": UserFactory(username="olivia", roles=["operator"]),
        "auditor": UserFactory(username="avery", roles=["auditor"]),
    }


@pytest.fixture
def teams(roles: dict[str, Any]) -> dict[str, Team]:
    """billing (ines, lead jonas, olivia), finance-ops (femi), support (nobody)."""
    billing, finance = TeamFactory(slug="billing"), TeamFactory(slug="finance-ops")
    MembershipFactory(team=billing, user=UserFactory(username="ines"))
    MembershipFactory(team=billing, user=UserFactory(username="jonas"), role="lead")
    MembershipFactory(team=billing, user=roles["operator"])
    MembershipFactory(team=finance, user=UserFactory(username="femi"))
    return {"billing": billing, "finance-ops": finance, "support": TeamFactory(slug="support")}


@pytest.fixture
def flow(teams: dict[str, Team]) -> Workflow:
    return workflows_load(sources=[("billing.yaml", FLOW)], actor=None)[0].workflow


@pytest.fixture
def signed_in(client: Any, roles: dict[str, Any]) -> Callable[[str], Any]:
    def sign_in(role: str) -> Any:
        client.force_login(roles[role])
        return client

    return sign_in
