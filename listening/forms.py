"""Staff form for a study made from uploaded clips (EXCERPT__vocal.wav, EXCERPT__SYSTEM.wav)."""

from __future__ import annotations

from django import forms

from listening.models import DEFAULT_ATTRIBUTES
from listening.uploads import CLIP_NAMING, UploadRefused, clip_name_parts

__all__ = ["CLIP_NAMING", "StudyForm"]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(f, initial) for f in files if f]


class StudyForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Staff-only; listeners never see it.")
    clips = MultipleFileField(help_text=f"Audio files named {CLIP_NAMING}.")
    comparisons = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}),
                                  initial="three-stage vs ground-truth\nthree-stage vs two-stage\nthree-stage vs random",
                                  help_text="One 'SYSTEM vs SYSTEM' per line.")
    attributes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                 initial="\n".join(DEFAULT_ATTRIBUTES),
                                 help_text="One rating scale per line; empty for preference trials only.")
    quota_per_pair = forms.IntegerField(min_value=1, initial=200, help_text="Judgments per excerpt and pair.")
    rating_quota_per_clip = forms.IntegerField(min_value=0, initial=50)
    preference_trials = forms.IntegerField(min_value=1, max_value=200, initial=12,
                                           help_text="Per listener, catch trials included.")
    rating_trials = forms.IntegerField(min_value=0, max_value=200, required=False,
                                       help_text="Per listener; empty: one per compared system (a complete block).")
    catch_rate = forms.FloatField(min_value=0.0, max_value=0.5, initial=0.1)
    screening = forms.BooleanField(required=False, initial=True, label="Headphone screening (Huggins pitch)")
    completion_code = forms.CharField(max_length=64)
    screened_out_code = forms.CharField(max_length=64, required=False)

    def clean_comparisons(self) -> list[tuple[str, str]]:
        pairs = []
        for line in self.cleaned_data["comparisons"].splitlines():
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(" vs ")]
            if len(parts) != 2 or not all(parts):
                raise forms.ValidationError(f"'{line.strip()}' is not of the form 'SYSTEM vs SYSTEM'")
            pairs.append((parts[0], parts[1]))
        return pairs

    def clean_attributes(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["attributes"].splitlines() if line.strip()]

    def clean_clips(self):
        clips = self.cleaned_data["clips"]
        errors = []
        for clip in clips:
            try:
                clip_name_parts(clip.name)
            except UploadRefused as error:
                errors.append(str(error))
        if errors:
            raise forms.ValidationError(errors)
        return clips
