"""The staff launch form: what `hafm benchmark run` takes, with the demo's inputs as defaults."""

from __future__ import annotations

from django import forms

from evalsite.models import BenchmarkRun, Checkpoint, Dataset
from evalsite.services.benchmarks import DEFAULT_SYSTEMS, SYSTEM_STAGES
from hafm_core import constants
from hafm_core.fad.embedders import EMBEDDERS


class LaunchForm(forms.Form):
    checkpoint = forms.CharField(
        max_length=1024, help_text="cascade folder holding ar_semantic/, ar_coarse/, ar_fine/ (ckpt_best.pt)")
    dataset = forms.CharField(
        max_length=1024, help_text="musdb18:PATH, stems:PATH, sample (the stempeg stem) or synthetic[:N]")
    systems = forms.MultipleChoiceField(
        choices=[(s, s) for s in SYSTEM_STAGES], initial=list(DEFAULT_SYSTEMS),
        widget=forms.CheckboxSelectMultiple)
    excerpts = forms.IntegerField(min_value=2, required=False,
                                  help_text="number of excerpts (empty: all of the test split)")
    seed = forms.IntegerField(initial=0, min_value=0)
    embedder = forms.ChoiceField(choices=[(name, name) for name in EMBEDDERS], initial="vggish",
                                 help_text="FAD embedder (logmel: a fast test protocol, no weights)")
    dtype = forms.TypedChoiceField(
        choices=[(name, name) for name in constants.MODEL_DTYPES], required=False,
        initial=constants.DEFAULT_MODEL_DTYPE, empty_value=constants.DEFAULT_MODEL_DTYPE,
        help_text="precision of the cascade's weights for generation; another dtype is another run")

    @classmethod
    def with_recent_defaults(cls, *args, **kwargs) -> LaunchForm:
        """Prefill with the latest checkpoint, dataset and embedder used on this site."""
        initial = kwargs.pop("initial", {})
        checkpoint = Checkpoint.objects.order_by("-created").first()
        dataset = Dataset.objects.order_by("-created").first()
        run = BenchmarkRun.objects.order_by("-created").first()
        if checkpoint:
            initial.setdefault("checkpoint", checkpoint.path)
        if dataset:
            initial.setdefault("dataset", dataset.source)
        if run:
            initial.setdefault("embedder", run.embedder)
            initial.setdefault("excerpts", run.n_excerpts)
        return cls(*args, initial=initial, **kwargs)
