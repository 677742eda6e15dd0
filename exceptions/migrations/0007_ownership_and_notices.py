"""Reason codes can be retired; who may reassign any case and see the gaps radar; email
preferences, the notices owed, and the escalation steps a breached case has taken."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exceptions", "0006_processing_error_reason"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="exceptioncase",
            options={
                "permissions": [
                    ("triage_exceptioncase", "Can triage exception cases"),
                    ("reassign_exceptioncase", "Can reassign any exception case"),
                    ("view_ownership_gaps", "Can see the ownership gaps radar"),
                ]
            },
        ),
        migrations.AddField(
            model_name="reasoncode",
            name="active",
            field=models.BooleanField(db_default=True, default=True),
        ),
        migrations.CreateModel(
            name="NotificationPreference",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("email", models.BooleanField(default=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notification_preference",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="CaseEscalation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "level",
                    models.CharField(
                        choices=[
                            ("breach", "Breach notice to the owner"),
                            ("leads", "Escalated to the team's leads"),
                            ("fallback", "Escalated to the first fallback team"),
                        ],
                        max_length=10,
                    ),
                ),
                ("deadline", models.DateTimeField()),
                ("recipients", models.JSONField(default=list)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "case",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="escalations",
                        to="exceptions.exceptioncase",
                    ),
                ),
            ],
            options={
                "ordering": ["case", "created_at", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("case", "level", "deadline"), name="escalation_once_per_deadline"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Notice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("assigned", "Assigned to you or your team"),
                            ("breach", "SLA breached"),
                            ("escalation", "Escalated to you"),
                        ],
                        max_length=12,
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=500)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                (
                    "case",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notices",
                        to="exceptions.exceptioncase",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("sent_at__isnull", True)),
                        fields=["user", "id"],
                        name="notice_unsent_idx",
                    )
                ],
            },
        ),
    ]
