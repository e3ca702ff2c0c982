"""Audio for listeners, behind per-participant tokens, with byte ranges.

A token is refused (403) unless the requesting browser session currently owns the token's
participant (same nonce) and the token is younger than the study's `token_max_age_s`.
Responses carry only type, length and range headers: no file name, date or entity tag. The
bytes are made per delivery (per token), so no two listeners get the same file.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from listening import selectors
from listening.audio_tokens import BadAudioToken, read_token
from listening.delivery import delivered_wav
from listening.huggins import delivered_screening_wav
from listening.models import Participant, ScreeningTrial, Trial
from listening.ranged_response import ranged_bytes_response
from listening.views.listener import SESSION_KEY, note_delivery

# Signature check before the study is known; the study's own, shorter limit is applied after.
OUTER_MAX_AGE_S = 7 * 24 * 3600


def _refused(reason: str) -> HttpResponse:
    return HttpResponse(f"audio refused: {reason}\n", status=403, content_type="text/plain")


@require_safe
def audio(request: HttpRequest, token: str) -> HttpResponse:
    try:
        claim = read_token(token, OUTER_MAX_AGE_S)
    except BadAudioToken as error:
        return _refused(str(error))
    participant = Participant.objects.select_related("study").filter(public_id=claim.participant).first()
    if participant is None:
        return _refused("unknown listener")
    try:
        read_token(token, participant.study.token_max_age_s)
    except BadAudioToken as error:
        return _refused(str(error))
    binding = request.session.get(SESSION_KEY, {}).get(str(participant.study.public_id))
    owner = selectors.participant_for_session(participant.study, binding)
    if owner is None or owner.pk != participant.pk or claim.nonce != participant.session_nonce:
        return _refused("this audio belongs to another session")
    if claim.kind == "screening":
        item = ScreeningTrial.objects.filter(public_id=claim.target, participant=participant).first()
        if item is None:
            raise Http404
        return note_delivery(request, participant, "screening", claim.target, "single",
                             ranged_bytes_response(request, delivered_screening_wav(item.seed, item.target, token)))
    trial = Trial.objects.select_related("stimulus_left", "stimulus_right").filter(
        public_id=claim.target, participant=participant).first()
    stimulus = None if trial is None else trial.stimulus_left if claim.side == "left" else trial.stimulus_right
    if stimulus is None:
        raise Http404
    # Every delivery differs in bytes, size and duration (listening.delivery): no hash is a clip id.
    return note_delivery(request, participant, "trial", claim.target, claim.side,
                         ranged_bytes_response(request, delivered_wav(Path(settings.MEDIA_ROOT) / stimulus.file_name,
                                                                      token)))
