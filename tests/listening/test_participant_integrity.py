"""Participants: id format, one participation per normalised id, join rate limits, no
takeover of a running participation, and implausible behaviour flagged per listener."""

from __future__ import annotations

import pytest
from django.test import Client

from listening import selectors
from listening.models import Participant
from tests.listening.conftest import prolific_id
from tests.listening.listener_client import Listener, fresh_address

pytestmark = pytest.mark.django_db


def refusal(response) -> str:
    import re

    assert response.status_code == 200, response
    match = re.search(rb'data-reason="([a-z_]+)"', response.content)
    return match.group(1).decode() if match else ""


def test_external_ids_must_have_the_study_format(make_study):
    study = make_study()
    good = prolific_id("good")
    for bad in ("pid-1", good + "0", good[:-1], good[:-1] + "g", "=1+1" + good[4:], good[:10] + "\x00" + good[11:]):
        listener = Listener(study, PROLIFIC_PID=bad)
        assert refusal(listener.consent()) == "bad_id", bad
    assert not Participant.objects.filter(study=study).exists()
    custom = make_study(external_id_pattern=r"[a-z]{3}\d{3}")
    assert Listener(custom, PROLIFIC_PID="abc123").consent().status_code == 302
    assert refusal(Listener(custom, PROLIFIC_PID=good).consent()) == "bad_id"


def test_edited_ids_and_fresh_sessions_do_not_restart_a_screened_out_listener(make_study):
    study = make_study()
    pid = prolific_id("deaf")
    first = Listener(study, PROLIFIC_PID=pid)
    first.consent()
    first.pass_screening(n_correct=0)
    first.pass_screening(n_correct=0)
    assert first.participant.status == "screened_out"
    for variant in (pid.upper(), f"  {pid} ", pid[:12] + " " + pid[12:], "\t" + pid.upper() + "\n"):
        again = Listener(study, PROLIFIC_PID=variant)  # a fresh session, another address
        assert refusal(again.consent()) == "already_done", repr(variant)
    # The same browser typing a new id is sent back to its own (finished) participation.
    response = first.client.post(first.base, {"consent": "yes", "PROLIFIC_PID": prolific_id("other")})
    assert response["Location"].endswith("/done/")
    assert Participant.objects.filter(study=study).count() == 1


def test_a_typed_id_cannot_take_over_a_running_participation(make_study):
    study = make_study(screening=False)
    pid = prolific_id("victim")
    victim = Listener(study, PROLIFIC_PID=pid)
    victim.consent()
    trial = victim.trial_data(victim.client.get(victim.base + "instructions/"))
    for typed in (pid, pid.upper(), f" {pid}"):
        thief = Listener(study, PROLIFIC_PID=typed)
        assert refusal(thief.consent()) == "in_use"
        assert thief.client.get(thief.base + "instructions/")["Location"].endswith(f"/s/{study.public_id}/")
        assert thief.client.get(trial["audio"]["left"]).status_code == 403
        assert thief.post_json(trial["answer_url"], {"chosen": "left", "answer_key": trial["answer_key"]}
                               ).status_code == 403
    assert victim.client.get(victim.base + "instructions/").status_code == 200  # still the victim's
    victim.play(trial)
    assert victim.answer(trial).status_code == 200


def test_one_address_cannot_open_many_participations(make_study):
    study = make_study(quota_per_pair=50, joins_per_address=5)
    address = fresh_address()
    outcomes = []
    for k in range(20):  # 20 fresh sessions from one address, each with a new valid id
        listener = Listener(study, client=Client(REMOTE_ADDR=address), PROLIFIC_PID=prolific_id(f"sock{k}"))
        response = listener.consent()
        outcomes.append("joined" if response.status_code == 302 else refusal(response))
    assert outcomes == ["joined"] * 5 + ["rate_limited"] * 15
    assert Participant.objects.filter(study=study).count() == 5
    # Another address is not affected; the address itself is not stored, only a keyed hash.
    assert Listener(study, PROLIFIC_PID=prolific_id("neighbour")).consent().status_code == 302
    assert not Participant.objects.filter(client_hash__contains=address).exists()
    assert all(len(h) == 64 for h in Participant.objects.values_list("client_hash", flat=True))


def joins(study, clients: list[Client]) -> list[str]:
    """Consent from each client (a browser session each) in turn, with a fresh valid id: "joined"
    or the refusal reason."""
    outcomes = []
    for client in clients:
        response = Listener(study, client=client, PROLIFIC_PID=prolific_id(f"via{fresh_address()}")).consent()
        outcomes.append("joined" if response.status_code == 302 else refusal(response))
    return outcomes


@pytest.mark.parametrize("proxies", ["", "192.0.2.10"])
def test_a_forged_forwarded_for_does_not_escape_the_address_limit(make_study, settings, monkeypatch, proxies):
    from hafm_core import config

    monkeypatch.setenv("HAFM_TRUSTED_PROXIES", proxies)  # none, or a proxy the attacker is not
    settings.HAFM_TRUSTED_PROXIES = config.trusted_proxies()
    study = make_study(quota_per_pair=50, joins_per_address=3)
    address = fresh_address()
    forged = [Client(REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"203.0.113.{k}, 192.0.2.10") for k in range(8)]
    assert joins(study, forged) == ["joined"] * 3 + ["rate_limited"] * 5


def test_behind_a_trusted_proxy_listeners_are_told_apart(make_study, settings, monkeypatch):
    from hafm_core import config

    monkeypatch.setenv("HAFM_TRUSTED_PROXIES", "192.0.2.10, 198.51.100.0/24")
    settings.HAFM_TRUSTED_PROXIES = config.trusted_proxies()
    study = make_study(quota_per_pair=50, joins_per_address=2)

    def via_proxies(forwarded_for: str) -> Client:  # the outer proxy is the peer of every request
        return Client(REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR=forwarded_for)

    # Client A, through two trusted proxies, forging a different left-most entry each time.
    first = [via_proxies(f"10.9.9.{k}, 203.0.113.5, 198.51.100.7") for k in range(4)]
    assert joins(study, first) == ["joined"] * 2 + ["rate_limited"] * 2
    # Client B, behind the same proxy, is another address with its own allowance.
    assert joins(study, [via_proxies("203.0.113.6") for _ in range(3)]) == ["joined"] * 2 + ["rate_limited"]
    # IPv6, written in another form by a proxy, is still the same client.
    ipv6 = [via_proxies(spelling) for spelling in ("2001:db8::1", "2001:DB8:0::1", "2001:db8:0:0::1")]
    assert joins(study, ipv6) == ["joined"] * 2 + ["rate_limited"]


def test_a_malformed_trusted_proxy_setting_is_refused(monkeypatch):
    from hafm_core import config
    from hafm_core.errors import ConfigError

    monkeypatch.setenv("HAFM_TRUSTED_PROXIES", "10.0.0.1, proxy.internal")
    with pytest.raises(ConfigError, match="HAFM_TRUSTED_PROXIES: 'proxy.internal'"):
        config.trusted_proxies()


def test_one_session_cannot_open_a_second_participation(make_study):
    from listening import services
    from listening.exceptions import ParticipationRefused

    study = make_study(quota_per_pair=50)
    services.join_study(study, prolific_id("one"), session_key="browser-1")
    with pytest.raises(ParticipationRefused) as refused:
        services.join_study(study, prolific_id("two"), session_key="browser-1")
    assert refused.value.reason == "already_joined"
    services.join_study(study, prolific_id("three"), session_key="browser-2")


def run(listener: Listener, chosen="left", score=4, fetch=True, slow=True):
    """A whole session; `slow`: each answer comes 1.5 clip lengths after serving."""
    from tests.listening.test_listening_enforced import served_earlier, served_now

    listener.consent()
    if fetch:
        listener.pass_screening()
    else:  # a bot answering the headphone check without fetching its audio
        from listening.models import ScreeningTrial

        for _ in range(6):
            page = listener.client.get(listener.base + "screening/")
            import re

            screening_id = re.search(rb'name="screening" value="([0-9a-f-]+)"', page.content).group(1).decode()
            target = ScreeningTrial.objects.get(public_id=screening_id).target
            listener.client.post(listener.base + "screening/", {"screening": screening_id, "answer": target})
    listener.practice()
    while not (reply := listener.next())["done"]:
        trial = reply["trial"]
        listener.play(trial)
        if slow:
            served_now(trial["id"])
            served_earlier(trial["id"], 3.0)  # 1.5 x the 2 s clips
        assert listener.answer(trial, chosen=chosen, score=score).status_code == 200


def test_implausible_listeners_are_flagged_in_exports_and_staff_pages(make_study, admin_client):
    study = make_study(quota_per_pair=20, rating_quota_per_clip=20, pair_listen_share=0.05,
                       rating_listen_share=0.05)
    honest = Listener(study, PROLIFIC_PID=prolific_id("honest"))
    run(honest, chosen="right", score=3)
    rusher = Listener(study, PROLIFIC_PID=prolific_id("rusher"))
    run(rusher, chosen="right", score=2, slow=False)  # answers as soon as allowed: 5 % of the audio
    bots = [Listener(study, PROLIFIC_PID=prolific_id(f"bot{k}")) for k in range(2)]
    for bot in bots:
        run(bot, chosen="left", score=5)  # scripted: the same answers in the same order
    deaf_bot = Listener(study, PROLIFIC_PID=prolific_id("nofetch"))
    run(deaf_bot, chosen="right", score=1, fetch=False)
    frame = selectors.participants_frame(study).set_index("external_id")
    flags = {name: frame.loc[prolific_id(name), "flags"] for name in ("honest", "rusher", "bot0", "bot1", "nofetch")}
    assert flags == {"honest": "", "rusher": "flag_too_fast", "bot0": "flag_duplicate_sequence",
                     "bot1": "flag_duplicate_sequence", "nofetch": "flag_no_audio"}
    assert frame["flag_too_fast"].dtype == bool
    assert list(frame.loc[prolific_id("bot0"), selectors.FLAG_COLUMNS]) == [False, False, True]
    page = admin_client.get(f"/listen/staff/{study.public_id}/")
    assert prolific_id("rusher").encode() in page.content and b"too fast" in page.content
    assert prolific_id("honest").encode() not in page.content.split(b'id="flagged"')[1].split(b"</table>")[0]
    changelist = admin_client.get("/admin/listening/participant/")
    assert changelist.status_code == 200 and b"flag_duplicate_sequence" in changelist.content
