"""One test per indicator: a small world where it must fire, and one where it must not."""

from __future__ import annotations

from datetime import date

from cbfixtures import PKG, build_db, fired, lead, run, visit


def fires(code, leads, visits=None, alerts=None, persons=None):
    con = build_db(leads, visits, alerts, persons)
    run(con)
    return fired(con, code)


def weight_of(code, leads, record_id):
    """The weight ``code`` added to ``record_id`` (its tier), 0 where it did not fire."""
    con = build_db(leads)
    run(con)
    got = con.execute("SELECT max(weight) FROM record_indicators WHERE package_id = ? AND code = ? AND record_id = ?",
                      [PKG, code, record_id]).fetchall()[0][0]
    return got or 0.0


# --- reference holdings ---------------------------------------------------------------------


def test_alert_before_txn():
    leads = [lead("R1", "c1"), lead("R2", "c2")]
    alerts = [("c1", date(2001, 2, 19), "stolen"), ("c2", date(2001, 3, 20), "stolen")]
    assert fires("alert_before_txn", leads, alerts=alerts) == {"R1"}


def test_alert_before_txn_not_when_long_before_the_window():
    leads = [lead("R1", "c1")]
    assert fires("alert_before_txn", leads, alerts=[("c1", date(1997, 1, 1), "lost")]) == set()


def test_alert_after_txn():
    leads = [lead("R1", "c1"), lead("R2", "c2"), lead("R3", "c3")]
    alerts = [("c1", date(2001, 4, 1), "compromised"), ("c2", date(2001, 2, 1), "stolen"),
              ("c3", date(2003, 1, 1), "stolen")]  # c3: too long after
    assert fires("alert_after_txn", leads, alerts=alerts) == {"R1"}


def test_chargeback():
    leads = [lead("R1", "c1", status="chargeback"), lead("R2", "c2"), lead("R3", "c3", status="refunded")]
    assert fires("chargeback", leads) == {"R1"}


def test_repeated_chargebacks_on_one_thread():
    leads = [lead(f"R{i}", "c1", days=30 * i, status="chargeback" if i in (1, 2) else "approved") for i in range(4)]
    leads += [lead(f"S{i}", "c2", "Bob Hart", days=30 * i, status="chargeback" if i in (3, 9) else "approved")
              for i in range(12)]  # a subscriber disputing 2 of 12: not a pattern of denial
    leads += [lead(f"T{i}", "c3", "Ben Johnson", days=30 * i, status="chargeback" if i in (5, 9, 10) else "approved")
              for i in range(12)]  # nor 3 of 12 over a year: a quarter of his own payments
    assert fires("repeated_chargebacks", leads) == {f"R{i}" for i in range(4)}


# --- the transaction --------------------------------------------------------------------------


def test_declines_before_approval_marks_the_sequence():
    leads = [
        lead("R1", "c1", status="declined"),
        lead("R2", "c1", status="declined", days=0.01),
        lead("R3", "c1", days=0.02),
    ]
    assert fires("declines_before_approval", leads) == {"R1", "R2", "R3"}


def test_declines_before_approval_not_days_apart_or_without_approval():
    leads = [
        lead("R1", "c1", status="declined"), lead("R2", "c1", days=3),  # approved three days later
        lead("R3", "c2", status="declined"),  # never approved
        lead("R4", "c3", days=1),
    ]
    assert fires("declines_before_approval", leads) == set()


def test_carding_reported():
    # tried until it worked, then billed monthly; the issuer later reported the card
    leads = [lead("R0", "c1", status="declined"), lead("R1", "c1", days=0.01), lead("R2", "c1", days=30)]
    leads += [lead("S0", "c2", "Bob Hart", status="declined"), lead("S1", "c2", "Bob Hart", days=0.01)]  # no alert
    leads += [lead("T0", "c3", "Cy Moss"), lead("T1", "c3", "Cy Moss", days=30)]  # alert, no declines
    alerts = [("c1", date(2001, 5, 1), "compromised"), ("c3", date(2001, 5, 1), "stolen")]
    assert fires("carding_reported", leads, alerts=alerts) == {"R0", "R1", "R2"}


def test_card_testing_one_source_declined_on_many_peoples_cards():
    ip = "91.1.1.1"
    leads = [
        lead("R1", "c1", "Ann Lee", ip=ip, status="declined"),
        lead("R2", "c2", "Bob Hart", ip=ip, status="declined", days=0.1),
        lead("R3", "c3", "Cy Moss", ip=ip, status="declined", days=0.2),
        lead("R4", "c4", "Di Ford", ip=ip, days=0.3),
        lead("R5", "c5", "Ed Kay", ip="81.9.9.9"),
    ]
    assert fires("card_testing", leads) == {"R1", "R2", "R3", "R4"}


def test_card_testing_not_one_persons_own_cards():
    ip = "81.1.1.1"
    leads = [lead(f"R{i}", f"c{i}", "Ann Lee", ip=ip, status="declined", days=i) for i in range(3)]
    persons = {f"R{i}": "P-ann" for i in range(3)}
    assert fires("card_testing", leads, persons=persons) == set()


def test_ip_country_mismatch_not_through_a_rotating_proxy():
    # AOL-like: the proxies stand in the US, their users in the UK
    names = ["Ann Lee", "Bob Hart", "Cy Moss", "Di Ford", "Eve Gray", "Fay Hill", "Gus Ives", "Hal Jones",
             "Ivy King", "Jo Long", "Kit Marsh"]
    leads, visits = [], []
    for k, n in enumerate(names):
        user = (n[0] + n.split()[1]).lower()
        leads.append(lead(f"R{k}", f"c{k}", n, ip=f"152.163.0.{k % 4}", ip_country="US", days=k))
        visits += [visit(user, f"152.163.0.{(k + i) % 4}", days=k + i + 1) for i in range(3)]
    leads.append(lead("S1", "d1", "Lu Ng", ip="91.1.1.1", ip_country="RU"))
    assert fires("ip_country_mismatch", leads, visits) == {"S1"}


def test_ip_country_mismatch():
    leads = [
        lead("R1", "c1", ip_country="RU"),
        lead("R2", "c2", ip_country="GB"),
        lead("R3", "c3", ip_country=""),  # unknown geolocation is no evidence
        lead("R4", "c4", ip_country="US", country=""),
    ]
    assert fires("ip_country_mismatch", leads) == {"R1"}


def test_thread_abroad():
    leads = [lead(f"R{i}", "c1", days=30 * i, ip_country="UA" if i != 2 else "") for i in range(3)]
    # one holiday order among many from home
    leads += [lead(f"S{i}", "c2", "Bob Hart", days=30 * i, ip_country="ES" if i == 1 else "GB") for i in range(5)]
    assert fires("thread_abroad", leads) == {"R0", "R1", "R2"}


# --- the access log ---------------------------------------------------------------------------


def test_never_visited():
    leads = [
        lead("R1", "c1", "Ann Lee"),
        lead("R2", "c2", "Bob Hart"),
        lead("R3", "c3", "Cy Moss", status="declined"),  # a declined attempt gets no access
        lead("R4", "c4", "Di Ford", days=398),  # bought at the very end of the log
    ]
    visits = [visit("bhart", "81.2.3.4", days=1)]
    assert fires("never_visited", leads, visits) == {"R1"}


def test_never_visited_not_without_an_access_log():
    con = build_db([lead("R1", "c1")])
    con.execute("DELETE FROM visits")
    run(con)
    assert fired(con, "never_visited") == set()


def test_visits_unlike_cardholder():
    leads = [lead("R1", "c1", "Ann Lee", ip="81.2.3.4"), lead("R2", "c2", "Bob Hart", ip="82.7.1.1")]
    visits = [
        visit("alee", "200.1.2.3", days=1), visit("alee", "200.9.9.9", days=2),  # none where she bought
        visit("bhart", "82.7.200.1", days=1),  # same provider network as his purchase
    ]
    assert fires("visits_unlike_cardholder", leads, visits) == {"R1"}


def test_visits_unlike_cardholder_not_where_a_namesake_shares_the_account_name():
    # Joan May and Jeffrey May both "jmay": the log's visits are Jeffrey's, from where he buys
    leads = [lead("R1", "c1", "Joan May", ip="81.2.3.4", username="jmay", postcode="CV3 4TT"),
             lead("R2", "c2", "Jeffrey May", ip="83.244.28.211", username="jmay", postcode="LS20 2UJ"),
             lead("R3", "c3", "Cy Moss", ip="84.1.1.1", username="cmoss")]
    visits = [visit("jmay", "83.244.28.211", days=1), visit("cmoss", "200.9.9.9", days=1)]
    assert fires("visits_unlike_cardholder", leads, visits) == {"R3"}


# --- one source behind many cards -------------------------------------------------------------


def test_shared_email():
    e = "zed@mail.example"
    leads = [lead("R1", "c1", "Ann Lee", email=e), lead("R2", "c2", "Bob Hart", email=e),
             lead("R3", "c3", "Cy Moss", email=e), lead("R4", "c4", "Di Ford")]
    assert fires("shared_email", leads) == {"R1", "R2", "R3"}


def test_shared_email_two_homes():
    e = "mikewhitehouse@mail.example"
    leads = [lead("R1", "c1", "Angus Smith", email=e, postcode="B76 2PX"),
             lead("R2", "c2", "Julie Shaw", email=e, postcode="SR4 3GL", days=8)]
    assert fires("shared_email", leads) == {"R1", "R2"}


def test_shared_email_not_a_couple():
    # partners of different surnames at one address, one family email: one household
    e = "thehome@mail.example"
    leads = [lead("R1", "c1", "Ann Lee", email=e, postcode="CV3 4TT"),
             lead("R2", "c2", "Bob Hart", email=e, postcode="CV34TT", days=8)]
    assert fires("shared_email", leads) == set()


def test_shared_account_not_from_two():
    # a cut-short account name collides between two namesakes more often than two share a login
    leads = [lead("R1", "c1", "Joan May", username="jmay", postcode="CV3 4TT"),
             lead("R2", "c2", "James Mayhew", username="jmay", postcode="N8 0WL")]
    assert fires("shared_account", leads) == set()


def test_shared_email_not_one_person_with_three_cards():
    e = "alee@mail.example"
    leads = [lead(f"R{i}", f"c{i}", "Ann Lee", email=e, days=30 * i) for i in range(3)]
    assert fires("shared_email", leads) == set()  # three "persons" (by card) but one surname


def test_shared_account():
    leads = [lead("R1", "c1", "Ann Lee", username="x1"), lead("R2", "c2", "Bob Hart", username="x1"),
             lead("R3", "c3", "Cy Moss", username="x1")]
    assert fires("shared_account", leads) == {"R1", "R2", "R3"}


def test_shared_account_not_a_name_collision():
    # two different Gibsons both call themselves dgibson; typing errors in the surname
    leads = [lead("R1", "c1", "Darren Gibson", username="dgibson"),
             lead("R2", "c2", "Dorothy Gibbson", username="dgibson"),
             lead("R3", "c3", "Dorothy Gison", username="dgibson")]
    assert fires("shared_account", leads) == set()


def test_shared_account_not_namesakes_of_a_cut_short_account_name():
    # the site cuts account names to 12 characters: three Christophers, three people, nothing shared
    leads = [lead(f"R{i}", f"c{i}", f"Christopher {n}", username="christopher_", email=f"christopher.{n}@x.example")
             for i, n in enumerate(["Taylor", "King", "Hodgson"])]
    assert fires("shared_account", leads) == set()


def test_account_pattern():
    leads = [lead(f"R{i}", f"c{i}", n, username=f"zed79{i}{i}", email=f"zed79{i}{i}@x.example")
             for i, n in enumerate(["Ann Lee", "Bob Hart", "Cy Moss", "Di Ford"])]
    assert fires("account_pattern", leads) == {"R0", "R1", "R2", "R3"}


def test_account_pattern_not_when_made_from_own_name():
    leads = [lead(f"R{i}", f"c{i}", n, username=f"amy_{i}{i}")
             for i, n in enumerate(["Amy Lee", "Amy Hart", "Ammy Moss", "Amy Ford"])]
    assert fires("account_pattern", leads) == set()


def test_shared_ip_through_orders_and_visits():
    ip = "91.5.5.5"
    leads = [lead("R1", "c1", "Ann Lee", ip=ip), lead("R2", "c2", "Bob Hart", ip=ip),
             lead("R3", "c3", "Cy Moss", ip="92.1.1.1"), lead("R4", "c4", "Di Ford")]
    visits = [visit("cmoss", ip, days=1)]  # the third account visited from the same IP
    assert fires("shared_ip", leads, visits) == {"R1", "R2", "R3"}


def test_shared_ip_not_a_household():
    # three Lees and their lodger at one postcode: one household, one connection
    ip, home = "81.5.5.5", "LS1 4AB"
    leads = [lead("R1", "c1", "Ann Lee", ip=ip, postcode=home), lead("R2", "c2", "Bob Lee", ip=ip, postcode=home),
             lead("R3", "c3", "Cy Lee", ip=ip, postcode="ls14ab"), lead("R4", "c4", "Di Ford", ip=ip, postcode=home)]
    assert fires("shared_ip", leads) == set()


def test_shared_ip_two_homes():
    # one address ordering on the cards of two people living apart, within days: a fraudster's
    # connection (weak alone, but it voids the stolen card's rebills as evidence of its owner)
    ip = "80.0.18.48"
    leads = [lead("R1", "c1", "Philip Clarke", ip=ip, postcode="SK1 5DA"),
             lead("R2", "c2", "Andrew Elliott", ip=ip, postcode="B76 2PX", days=4),
             lead("R3", "c3", "Cy Moss", ip="92.1.1.1", postcode="B76 2PX")]
    assert fires("shared_ip", leads) == {"R1", "R2"}
    assert weight_of("shared_ip", leads, "R1") < weight_of("shared_ip", leads + [
        lead("R4", "c4", "Di Ford", ip=ip, postcode="N8 0WL", days=2)], "R1")


def test_name_unlike_cardholder():
    leads = [
        lead("R1", "c1", "Randy Fox", cardholder="MARK GRANT"),
        lead("R2", "c2", "Jon Evaans", cardholder="JON EVANS"),  # a typing error
        lead("R3", "c3", "Natalie B", cardholder="NATALIE BYRNE"),  # an initial
        lead("R4", "c4", "Mark Grant", cardholder="GRANT, MARK"),  # surname first
        lead("R5", "c5", "Bob O'Brien", cardholder="ROBERT OBRIEN"),  # nickname, punctuation
        lead("R6", "c6", "Ann Lee", cardholder=""),  # no cardholder name: no evidence
    ]
    assert fires("name_unlike_cardholder", leads) == {"R1"}


# --- timing -----------------------------------------------------------------------------------


def test_signup_burst_from_one_source():
    ip = "94.51.34.8"
    names = ["Ann Lee", "Bob Hart", "Cy Moss", "Di Ford"]
    leads = [lead(f"R{i}", f"c{i}", n, ip=ip, days=i * 0.02) for i, n in enumerate(names)]
    leads.append(lead("R9", "c9", "Ed Kay", ip=ip, days=5))
    assert fires("signup_burst", leads) == {"R0", "R1", "R2", "R3"}


def test_signup_burst_not_spread_over_days():
    ip = "94.51.34.8"
    names = ["Ann Lee", "Bob Hart", "Cy Moss", "Di Ford"]
    leads = [lead(f"R{i}", f"c{i}", n, ip=ip, days=i * 2) for i, n in enumerate(names)]
    assert fires("signup_burst", leads) == set()


def test_signup_spike_without_a_common_source():
    names = [f"Name{c} Sur{c}x" for c in "abcdefgh"]
    leads = [lead(f"R{i}", f"c{i}", n, ip=f"81.{i}.1.1", days=i * 0.004) for i, n in enumerate(names)]
    leads += [lead(f"Q{i}", f"d{i}", f"Other{i} Per{i}z", ip=f"82.{i}.1.1", days=-3 + i * 0.7) for i in range(8)]
    assert fires("signup_spike", leads) == {f"R{i}" for i in range(8)}


def test_signup_spike_not_steady_trade():
    leads = [lead(f"R{i}", f"c{i}", f"Name{i} Sur{i}x", ip=f"81.{i}.1.1", days=i * 0.2) for i in range(20)]
    assert fires("signup_spike", leads) == set()


# --- the cardholder's own use -----------------------------------------------------------------


def test_repeat_purchases():
    leads = [lead("R1", "c1", days=0), lead("R2", "c1", days=60),
             lead("S1", "c2", "Bob Hart", days=0), lead("S2", "c2", "Bob Hart", days=2),  # too close
             lead("T1", "c3", "Cy Moss", days=0), lead("T2", "c3", "Cy Moss", days=60, email="x@y.example",
                                                       username="zz")]  # different account
    assert fires("repeat_purchases", leads) == {"R1", "R2"}


def test_repeat_purchases_across_the_persons_cards():
    leads = [lead("R1", "c1", days=0), lead("R2", "c2", days=90)]
    assert fires("repeat_purchases", leads, persons={"R1": "P1", "R2": "P1"}) == {"R1", "R2"}


def test_long_use():
    leads = [lead(f"R{i}", "c1", days=30 * i) for i in range(7)]
    leads += [lead(f"S{i}", "c2", "Bob Hart", days=30 * i) for i in range(3)]  # three months only
    assert fires("long_use", leads) == {f"R{i}" for i in range(7)}


def test_shared_ip_not_people_months_apart():
    ip = "81.1.1.1"  # one address, a new person every few months (a provider reassigning it)
    leads = [lead(f"R{k}", f"c{k}", n, ip=ip, days=90 * k)
             for k, n in enumerate(["Ann Lee", "Bob Hart", "Cy Moss", "Di Ford"])]
    assert fires("shared_ip", leads) == set()


def test_shared_ip_not_a_rotating_proxy():
    # AOL-like: every order and visit through one of a few addresses of the provider's network
    names = ["Ann Lee", "Bob Hart", "Cy Moss", "Di Ford", "Eve Gray", "Fay Hill", "Gus Ives", "Hal Jones",
             "Ivy King", "Jo Long", "Kit Marsh"]
    leads, visits = [], []
    for k, n in enumerate(names):
        user = (n[0] + n.split()[1]).lower()
        leads += [lead(f"R{k}-{i}", f"c{k}", n, ip=f"152.163.0.{(k + i) % 4}", days=i * 30 + k) for i in range(2)]
        visits += [visit(user, f"152.163.0.{(k + i) % 4}", days=i * 30 + k + 1) for i in range(3)]
    assert fires("shared_ip", leads, visits) == set()


def test_purchase_ip_consistent():
    leads = [lead("R1", "c1", ip="81.2.3.4"), lead("R2", "c1", ip="81.2.9.9", days=10),
             lead("S1", "c2", "Bob Hart", ip="81.2.3.4"), lead("S2", "c2", "Bob Hart", ip="95.1.1.1", days=10)]
    assert fires("purchase_ip_consistent", leads) == {"R1", "R2"}


def test_name_unlike_cardholder_not_one_slip_in_a_long_thread():
    leads = [lead(f"R{i}", "c1", "Roger Cox", days=30 * i) for i in range(6)]
    leads.append(lead("R9", "c1", "Roger Cx", cardholder="ROGER COX", days=200))
    leads.append(lead("S1", "c2", "Roger Xu", cardholder="ROGER COX", username="rc", email="rc@x.example"))
    assert fires("name_unlike_cardholder", leads) == {"S1"}


def test_visits_fit():
    leads = [lead("R1", "c1", "Ann Lee", ip="81.2.3.4"), lead("R2", "c2", "Bob Hart", ip="81.7.7.7"),
             lead("R3", "c3", "Cy Moss", ip="81.8.8.8", username="shared"),
             lead("R4", "c4", "Di Ford", ip="81.8.8.8", username="shared")]
    visits = [visit("alee", "81.2.3.4", 1), visit("alee", "81.2.3.4", 5),
              visit("bhart", "81.7.7.7", 1),  # one day only
              visit("shared", "81.8.8.8", 1), visit("shared", "81.8.8.8", 4)]  # an account of two people
    assert fires("visits_fit", leads, visits) == {"R1"}


def test_account_in_cardholder_name():
    leads = [lead("R1", "c1", "Mlry Butler", username="mbutler"),
             lead("R2", "c2", "Ann Lee", username="zed7956", email="zed7956@mail.example"),
             lead("R3", "c3", "Randy Fox", cardholder="MARK GRANT", username="mgrant")]
    assert fires("account_in_cardholder_name", leads) == {"R1"}


def test_every_indicator_has_a_test():
    from ore.corroborate.indicators import SPECS

    here = open(__file__, encoding="utf-8").read()
    missing = [c for c in SPECS if f'"{c}"' not in here]
    assert not missing, missing


def test_sentences_are_filled_in():
    con = build_db([lead("R1", "c1", "Randy Fox", cardholder="MARK GRANT", status="chargeback")])
    run(con)
    rows = con.execute("SELECT code, sentence FROM record_indicators WHERE package_id = ? ORDER BY code",
                       [PKG]).fetchall()
    got = dict(rows)
    assert got["name_unlike_cardholder"] == "The subscriber typed the name 'Randy Fox', unlike the cardholder's name 'MARK GRANT'."
    assert all("{" not in s and "?" not in s for s in got.values())


def test_fraud_indicator_propagates_along_the_thread_only():
    # a carding session (decline, approval) then monthly rebills through the same account
    leads = [lead("R0", "c1", status="declined"), lead("R1", "c1", days=0.01), lead("R2", "c1", days=30),
             lead("R3", "c1", days=60, username="other", email="other@x.example")]  # another account
    con = build_db(leads)
    run(con)
    assert fired(con, "declines_before_approval") == {"R0", "R1", "R2"}
    (sentence,) = con.execute(
        "SELECT sentence FROM record_indicators WHERE record_id = 'R2' AND code = 'declines_before_approval'"
    ).fetchall()[0]
    assert sentence.startswith("On another payment with this card through this account: ")


def test_cardholder_signals_are_void_where_the_source_serves_many_people():
    ip = "91.9.9.9"
    leads = []
    visits = []
    for k, name in enumerate(["Ann Lee", "Bob Hart", "Cy Moss"]):
        user = (name[0] + name.split()[1]).lower()
        leads += [lead(f"{user}{i}", f"c{k}", name, ip=ip, days=30 * i) for i in range(3)]
        visits += [visit(user, ip, days=30 * i + 1) for i in range(3)]
    con = build_db(leads, visits)
    run(con)
    rows = con.execute(
        "SELECT code, weight, sentence FROM record_indicators WHERE record_id = 'alee1' ORDER BY code"
    ).fetchall()
    got = {c: (w, t) for c, w, t in rows}
    assert got["shared_ip"][0] > 0
    assert got["repeat_purchases"][0] == 0.0 and "Not counted" in got["repeat_purchases"][1]
    assert got["visits_fit"][0] == 0.0
