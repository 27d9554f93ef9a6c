"""Combination, person grades and likely_victim, unidentified subjects, re-runs, the policy file."""

from __future__ import annotations

from datetime import date

import pytest

from cbfixtures import PKG, build_db, evidence, fired, lead, persons, run, visit
from ore.corroborate import PolicyError, load_policy
from ore.errors import OreError


def subscriber(card="s1", name="Sam Brown", n=4, ip="81.2.3.4"):
    """A subscriber's own use: monthly purchases on one card and account, visits from home."""
    user = (name[0] + name.split()[1]).lower()
    leads = [lead(f"{card}-{i}", card, name, days=30 * i, ip=ip) for i in range(n)]
    visits = [visit(user, ip, days=30 * i + 1) for i in range(n)] + [visit(user, ip, days=30 * i + 3) for i in range(n)]
    return leads, visits


def carder(cards, ip="91.33.196.97", email="lol8039@inbox.example", day=10.0):
    """One fraudster's account used with many people's cards, a decline before each approval."""
    out = []
    for i, (card, name) in enumerate(cards):
        t = day + i * 0.1
        user = email.split("@")[0]
        out.append(lead(f"{card}-d", card, name, days=t, ip=ip, email=email, username=user, status="declined"))
        out.append(lead(f"{card}-a", card, name, days=t + 0.01, ip=ip, email=email, username=user))
    return out


VICTIMS = [("v1", "Ann Lee"), ("v2", "Bob Hart"), ("v3", "Cy Moss"), ("v4", "Di Ford")]


def test_no_single_signal_decides():
    # one moderate fraud signal alone does not make a record fraud-suspected
    con = build_db([lead("R1", "c1", status="chargeback"), lead("R2", "c2", ip_country="RU"),
                    lead("R3", "c3")], [visit("jsmith", "81.2.3.4", 1), visit("jsmith", "81.2.3.4", 2)])
    run(con)
    ev = evidence(con)
    assert not any(ev[r][1] for r in ("R1", "R2", "R3"))
    assert ev["R1"][2] == "chargeback"


def test_score_is_prior_plus_recorded_weights():
    leads = carder(VICTIMS)
    con = build_db(leads)
    run(con)
    pol = load_policy()
    rows = con.execute(
        "SELECT e.record_id, e.fraud_score, sum(i.weight) FROM record_evidence e "
        "LEFT JOIN record_indicators i USING (package_id, record_id) GROUP BY ALL"
    ).fetchall()
    for rid, score, w in rows:
        assert score == pytest.approx(pol.prior_log_odds + (w or 0.0)), rid


def test_victims_of_a_carder_are_likely_victims_graded_c():
    s_leads, s_visits = subscriber()
    con = build_db(carder(VICTIMS) + s_leads, s_visits)
    run(con)
    ev = evidence(con)
    assert all(ev[f"{c}-{x}"][1] for c, _ in VICTIMS for x in "da")
    assert not any(ev[r.get("record_id")][1] for r in s_leads)
    per = persons(con)
    for card, _ in VICTIMS:
        grade, victim, reasons = per[f"P-{card}"]
        assert (grade, victim) == ("C", True)
        assert "all_records_fraud_suspected" in reasons
    grade, victim, reasons = per["P-s1"]
    assert (grade, victim) == ("A", False)
    assert "repeat_purchases" in reasons and "visits_fit" in reasons


def test_a_subscriber_whose_card_was_also_stolen_stays_a_subscriber():
    s_leads, s_visits = subscriber(card="s1", name="Sam Brown")
    # the carder also used Sam's card once
    stolen = carder([("s1", "Sam Brown")] + VICTIMS[:3])
    con = build_db(s_leads + stolen, s_visits)
    run(con)
    ev = evidence(con)
    assert ev["s1-a"][1] and ev["s1-d"][1]
    grade, victim, reasons = persons(con)["P-s1"]
    assert victim is False and grade == "A"
    assert "some_records_fraud_suspected" in reasons


def test_uncorroborated_single_purchase_is_grade_b():
    con = build_db([lead("R1", "c1", "Ann Lee", username="annie", email="annie@x.example")])
    run(con)
    grade, victim, reasons = persons(con)["P-c1"]
    assert (grade, victim) == ("B", False)
    assert "not_corroborated" in reasons


def test_subjects_cluster_by_email_username_ip_and_not_genuine_records():
    a = carder(VICTIMS, ip="91.1.1.1", email="lol1@x.example")
    # a second actor: fresh email per card, one IP
    b = [lead(f"w{i}-a", f"w{i}", n, ip="92.2.2.2", email=f"zz{i}@y.example", username=f"zz{i}",
              cardholder=f"OTHER PERSON{i}", days=50 + i * 0.2)
         for i, n in enumerate(["Eve Gray", "Fay Hill", "Gus Ives"])]
    # a genuine subscriber of long standing behind the same IP (a provider's proxy): not suspected
    s_leads, s_visits = subscriber(ip="91.1.1.1", n=7)
    con = build_db(a + b + s_leads, s_visits)
    run(con)
    ev = evidence(con)
    subj_a = {ev[r["record_id"]][3] for r in a}
    subj_b = {ev[r["record_id"]][3] for r in b}
    assert len(subj_a) == 1 and None not in subj_a
    assert len(subj_b) == 1 and None not in subj_b and subj_a != subj_b
    assert all(ev[r["record_id"]][3] is None for r in s_leads)
    rows = con.execute(
        "SELECT subject_id, display_name, record_count, card_count, identifiers FROM unidentified_subjects "
        "WHERE package_id = ? ORDER BY subject_id", [PKG]
    ).fetchall()
    by = {r[0]: r[1:] for r in rows}
    (sa,) = subj_a
    assert by[sa][0] == "lol1@x.example"
    assert by[sa][1:3] == (8, 4)
    assert "ip:91.1.1.1" in by[sa][3]


def test_a_proxy_used_by_two_actors_months_apart_does_not_merge_them():
    proxy = "62.30.1.7"
    first = carder(VICTIMS, ip=proxy, email="lol1@x.example", day=10)
    later = carder([("w1", "Eve Gray"), ("w2", "Fay Hill"), ("w3", "Gus Ives")], ip=proxy,
                   email="zed2@y.example", day=200)
    con = build_db(first + later)
    run(con)
    ev = evidence(con)
    s1 = {ev[r["record_id"]][3] for r in first}
    s2 = {ev[r["record_id"]][3] for r in later}
    assert len(s1) == 1 and len(s2) == 1 and s1 != s2 and None not in s1 | s2


def test_subject_is_not_named_after_a_victims_own_email():
    # an identity thief uses each victim's own name and email, from one IP of his own
    ip = "91.200.42.242"
    leads = []
    for k, name in enumerate(["Ann Lee", "Bob Hart", "Cy Moss", "Di Ford"]):
        user = (name[0] + name.split()[1]).lower()
        leads += [lead(f"{user}{i}", f"c{k}", name, ip=ip, days=10 * k + 30 * i, email=f"{user}@mail.example")
                  for i in range(2)]
    con = build_db(leads)
    run(con)
    (row,) = con.execute("SELECT display_name, identifiers FROM unidentified_subjects").fetchall()
    assert row[0] == ip
    assert row[1].startswith("ip:" + ip)


def test_subjects_tied_by_timing_alone():
    # a merchant billing harvested cards to himself: new accounts, rotating IPs, one night
    names = ["Ann Lee", "Bob Hart", "Cy Moss", "Di Ford", "Eve Gray", "Fay Hill", "Gus Ives", "Hal Jones"]
    m = [lead(f"m{i}", f"m{i}", n, ip=f"83.{i}.9.9", username=f"member{i}{i}", email=f"member{i}{i}@pass.example",
              days=100 + i * 0.003, status="chargeback" if i % 2 else "approved") for i, n in enumerate(names)]
    s_leads, s_visits = subscriber()
    con = build_db(m + s_leads, s_visits)
    run(con)
    ev = evidence(con)
    assert all(ev[r["record_id"]][1] for r in m)
    assert len({ev[r["record_id"]][3] for r in m}) == 1


def test_rerun_replaces_and_is_deterministic():
    s_leads, s_visits = subscriber()
    con = build_db(carder(VICTIMS) + s_leads, s_visits)
    dump = []
    for _ in range(2):
        run(con)
        dump.append([con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                     for t in ("record_indicators", "record_evidence", "person_evidence", "unidentified_subjects")])
    assert dump[0] == dump[1]


def test_missing_resolve_is_a_clear_error():
    con = build_db([lead("R1", "c1")])
    con.execute("DROP TABLE resolved_records")
    with pytest.raises(OreError, match="resolved_records"):
        run(con)


# --- the policy file ------------------------------------------------------------------------


def test_policy_override_changes_the_outcome_without_code(tmp_path):
    con = build_db([lead("R1", "c1", status="chargeback")], [visit("jsmith", "81.2.3.4", 1)])
    run(con)
    assert not evidence(con)["R1"][1]
    p = tmp_path / "strict.yaml"
    p.write_text("indicators:\n  chargeback:\n    weight: 4.0\n", encoding="utf-8")
    s = run(con, p)
    assert evidence(con)["R1"][1]
    assert s.policy == str(p)
    grade, victim, _ = persons(con)["P-c1"]
    assert (grade, victim) == ("C", True)


def test_policy_can_disable_an_indicator(tmp_path):
    con = build_db(carder(VICTIMS))
    p = tmp_path / "p.yaml"
    p.write_text("indicators:\n  shared_email: {enabled: false}\n  shared_account: {enabled: false}\n", encoding="utf-8")
    run(con, p)
    assert fired(con, "shared_email") == set() and fired(con, "shared_account") == set()
    assert fired(con, "declines_before_approval")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("indicators:\n  chargeback:\n    weight: -1\n", "indicators.chargeback.weight"),
        ("indicators:\n  chargeback:\n    weight: lots\n", "indicators.chargeback.weight"),
        ("indicators:\n  chargebak:\n    weight: 1\n", "indicators.chargebak"),
        ("indicators:\n  chargeback:\n    colour: red\n", "indicators.chargeback.colour"),
        ("indicators:\n  chargeback:\n    sentence: 'On {when}.'\n", "indicators.chargeback.sentence"),
        ("indicators:\n  shared_ip:\n    tiers: [{at_least: 5, weight: 1}, {at_least: 2, weight: 2}]\n",
         "indicators.shared_ip.tiers"),
        ("indicators:\n  never_visited:\n    params: {min_log_days_after: -3}\n",
         "indicators.never_visited.params.min_log_days_after"),
        ("prior_log_odds: high\n", "prior_log_odds"),
        ("persons:\n  likely_victim:\n    fraud_share_above: 2\n", "persons.likely_victim.fraud_share_above"),
        ("subjects:\n  link_on: [email, phase_of_moon]\n", "subjects.link_on"),
        ("- just\n- a list\n", "mapping"),
        ("indicators: [\n", "YAML"),
    ],
)
def test_policy_errors_name_the_key(tmp_path, text, key):
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_policy(p)
    assert key in str(e.value)


def test_missing_policy_file_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_default_policy_loads_and_every_indicator_is_declared():
    from ore.corroborate.indicators import SPECS

    pol = load_policy()
    assert set(pol.indicators) == set(SPECS)
    assert pol.source == "default" and len(pol.digest) == 16


def test_alert_then_own_repeat_use_is_not_fraud():
    # a card reported lost long ago, then used for months by its holder with his own account
    s_leads, s_visits = subscriber(n=5)
    con = build_db(s_leads, s_visits, alerts=[("s1", date(2000, 12, 1), "lost")])
    run(con)
    assert fired(con, "alert_before_txn")
    assert not any(v[1] for v in evidence(con).values())
