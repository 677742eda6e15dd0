"""A few hundred demo events from the three workflows, with the mix real operations see:
mostly clean, some with missing or mistyped fields, some the destination refuses or fails on
for a while, large refunds that need a manager, refunds the provider never confirms."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.actors import SYSTEM
from audit.canonical import canonical_hash
from workflows.models import ApiToken, Workflow
from workflows.services.ingest import event_ingest
from workflows.services.tokens import api_token_create, api_token_revoke

DEMO_TOKEN_NAME = "demo-destination"  # noqa: S105 (a name, not a secret)
FIRST = ["Dana", "Ravi", "Mei", "Jonas", "Amara", "Luis", "Sofia", "Kenji", "Noor", "Elena"]
LAST = ["Fischer", "Patel", "Chen", "Berg", "Okoro", "García", "Rossi", "Tanaka", "Haddad", "Novak"]
COMPANIES = [
    ("Northwind Traders", 2300), ("Contoso Retail", 640), ("Fabrikam Health", 15000),
    ("Tailspin Toys", 45), ("Wingtip Labs", 120), ("Adatum Logistics", 880),
    ("Litware Studio", 12), ("Proseware Bank", 5200), ("Lucerne Publishing", 310),
]  # fmt: skip
TERRITORIES = ["EMEA", "EMEA", "NA", "NA", "APAC"]
SUBJECTS = {
    "outage": ["Dashboard down for all users", "API returns 502 since 09:40", "Cannot log in"],
    "billing": ["Charged twice this month", "Invoice shows wrong VAT", "Update card on file"],
    "bug": ["Export drops the last row", "Timezone wrong in reports", "Search ignores accents"],
    "question": ["How do I add a seat?", "Where is the audit log?", "SSO setup help"],
}
REFUND_REASONS = ["damaged in transit", "duplicate charge", "cancelled order", "late delivery"]


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return first, last


def lead_payload(rng: random.Random, n: int) -> dict[str, Any]:
    first, last = _person(rng)
    company, size = rng.choice(COMPANIES)
    domain = company.split()[0].lower() + ".example"
    payload: dict[str, Any] = {
        "email": f"{first.lower()}.{last.lower()}@{domain}",
        "name": f"{first} {last}",
        "company": {"name": company, "size": size},
        "territory": rng.choice(TERRITORIES),
        "form": "demo-request",
    }
    roll = rng.random()
    if roll < 0.06:
        del payload["company"]["size"]  # the form shipped without the size field
    elif roll < 0.09:
        payload["company"]["size"] = f"{size}+"  # free text where a number belongs
    elif roll < 0.13:
        payload["email"] = f"{first.lower()}@invalid.example"  # the CRM refuses it
    return payload


def ticket_payload(rng: random.Random, n: int) -> dict[str, Any]:
    category = rng.choice(list(SUBJECTS))
    subject = rng.choice(SUBJECTS[category])
    if rng.random() < 0.1:
        subject = f"[flaky] {subject}"  # the help desk fails twice, then accepts it
    payload: dict[str, Any] = {
        "ticket_id": f"T-{40000 + n}",
        "subject": subject,
        "category": category,
        "customer": {"tier": rng.choice(["free", "pro", "pro", "enterprise"])},
    }
    if rng.random() < 0.05:
        del payload["customer"]["tier"]
    return payload


def refund_payload(rng: random.Random, n: int) -> dict[str, Any]:
    base = rng.choice([19.9, 49.0, 89.5, 240.0, 610.0, 1450.0, 2890.0])
    amount = round(base * rng.uniform(0.8, 1.2), 2)
    return {
        "order_id": f"ORD-{880000 + n}",
        "amount": amount,
        "currency": rng.choice(["EUR", "EUR", "USD", "GBP"]),
        "reason": rng.choice(REFUND_REASONS),
        "customer_email": "{}.{}@example.com".format(*(s.lower() for s in _person(rng))),
    }


GENERATORS = {
    "lead-routing": (lead_payload, 140),
    "support-triage": (ticket_payload, 100),
    "refund-approval": (refund_payload, 80),
}


def _token_file() -> Path:
    return Path(settings.DATA_DIR) / "demo-api-token"


@transaction.atomic
def demo_token_ensure() -> None:
    """The demo destination's API token (for outcome callbacks), kept under .data/."""
    path = _token_file()
    existing = (
        ApiToken.objects.filter(name__startswith=DEMO_TOKEN_NAME, revoked_at__isnull=True)
        .order_by("-created_at")
        .first()
    )
    if existing is not None and path.exists():
        return
    if existing is not None:
        # The plaintext is gone with the file: replace the token rather than guess it.
        api_token_revoke(token=existing, actor=SYSTEM)
    name = f"{DEMO_TOKEN_NAME}-{ApiToken.objects.filter(name__startswith=DEMO_TOKEN_NAME).count()}"
    if not ApiToken.objects.filter(name=DEMO_TOKEN_NAME).exists():
        name = DEMO_TOKEN_NAME
    _, plaintext = api_token_create(
        name=name, workflow_slugs=["refund-approval"], all_workflows=False, actor=SYSTEM
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plaintext)
    path.chmod(0o600)


def demo_events_ensure(*, seed: int = 7) -> int:
    """Ingest the demo events once (by idempotency key); returns how many were new."""
    rng = random.Random(seed)  # noqa: S311 (demo data, not security)
    created = 0
    for slug, (generator, count) in GENERATORS.items():
        workflow = Workflow.objects.get(slug=slug)
        for n in range(count):
            payload = generator(rng, n)
            # The idempotency key makes a second seeding store nothing again.
            _, duplicate = event_ingest(
                workflow=workflow,
                payload=payload,
                raw_body_hash=canonical_hash(payload),
                idempotency_key=f"demo-{slug}-{n}",
                headers={"content-type": "application/json", "user-agent": "handoff-demo"},
                source="demo",
            )
            created += not duplicate
    return created
