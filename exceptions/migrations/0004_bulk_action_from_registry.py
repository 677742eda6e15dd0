"""A bulk job's action is a name from the registry of case actions (exceptions.actions), which
says which actions exist: the column keeps its values, only Django's fixed choice list goes.
No SQL runs (choices live in Python only)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exceptions", "0003_queue"),
    ]

    operations = [
        migrations.AlterField(
            model_name="bulkjob",
            name="action",
            field=models.CharField(max_length=20),
        ),
    ]
