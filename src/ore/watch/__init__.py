"""Watch: catch convicted and cautioned offenders who buy again, and find new buyers at flagged merchants.

A payment feed (``docs/watch.md``) is screened against watchlists rebuilt from the case
store each time (card tokens, emails and account names of convicted and cautioned
persons; flagged merchants and products). A watched person's purchase becomes an alert
for their offender manager's force, ranked by CPORT; a purchase from a flagged merchant
by anyone becomes a new lead in a lead package for triage. Screening is incremental and
safe to interrupt (``ore.watch.screening``). The CLI (``ore.watch.cli``) and, later, the web
call these functions.
"""

from ore.watch.alerts import AlertView, acknowledge, list_alerts, refresh
from ore.watch.cport import Score, published_context, score
from ore.watch.engine import ENGINES, get_engine
from ore.watch.feed import COLUMNS
from ore.watch.offenders import find_subject, list_watched, record_cport, set_manager
from ore.watch.screening import ScreenSummary, feeds_screened, screen
from ore.watch.watchlist import WATCHED, flag, flags, sync_subjects, unflag

__all__ = [
    "COLUMNS", "ENGINES", "WATCHED", "AlertView", "Score", "ScreenSummary", "acknowledge", "feeds_screened",
    "find_subject", "flag", "flags", "get_engine", "list_alerts", "list_watched", "published_context",
    "record_cport", "refresh", "score", "screen", "set_manager", "sync_subjects", "unflag",
]
