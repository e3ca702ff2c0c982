"""Trial.study, a copy of the participant's study (#14 item 9), backfilled here; the next
migration makes it required and indexes it. Two migrations: on PostgreSQL the backfill leaves
deferred foreign-key checks pending, and a table with pending checks cannot be altered in the
same transaction."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_participant_study(apps, schema_editor):
    """One UPDATE statement: every trial takes its participant's study."""
    Trial = apps.get_model("listening", "Trial")
    Participant = apps.get_model("listening", "Participant")
    study_of_participant = Participant.objects.filter(pk=OuterRef("participant_id")).values("study_id")[:1]
    Trial.objects.update(study_id=Subquery(study_of_participant))


class Migration(migrations.Migration):

    dependencies = [
        ("listening", "0003_merge_20261127_1612"),
    ]

    operations = [
        migrations.AddField(
            model_name="trial",
            name="study",
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="listening.study"),
        ),
        migrations.RunPython(copy_participant_study, migrations.RunPython.noop),
    ]
