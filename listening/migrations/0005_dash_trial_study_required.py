"""Trial.study becomes required (every creator sets it) and gets the (study, status, kind)
index the analysis reads through (#14 item 9)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("listening", "0004_dash_trial_study"),
    ]

    operations = [
        migrations.AlterField(
            model_name="trial",
            name="study",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                    to="listening.study"),
        ),
        migrations.AddIndex(
            model_name="trial",
            index=models.Index(fields=["study", "status", "kind"], name="trial_study_status_kind"),
        ),
    ]
