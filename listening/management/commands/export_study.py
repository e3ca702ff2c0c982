"""manage.py export_study STUDY --out DIR: write preferences.csv, ratings.csv, participants.csv."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from listening import exports
from listening.models import Study


class Command(BaseCommand):
    help = "Export a listening study's judgments as CSV files (STUDY: its name or public id)."

    def add_arguments(self, parser):
        parser.add_argument("study", help="study name or public id (UUID)")
        parser.add_argument("--out", default=".", help="folder to write the CSV files into (default: .)")

    def handle(self, *args, study: str, out: str, **options):
        try:
            query = {"public_id": uuid.UUID(study)}
        except ValueError:
            query = {"name": study}
        found = Study.objects.filter(**query).first()
        if found is None:
            names = ", ".join(Study.objects.values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"no study {study!r} (studies: {names})")
        for path in exports.write_exports(found, Path(out)):
            self.stdout.write(str(path))
