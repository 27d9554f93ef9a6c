"""The web application: server-rendered pages (Jinja2 + htmx) and a REST API under /api/v1.

Pages and API call the same functions the ``ore`` command calls (``ore.web.actions`` holds
the command bodies they share; ``ore.cases.views`` the queue, person, chart and dashboard
reads, all through ``ore.cases.queries.case_query``). No pipeline stage imports this.
"""

from ore.web.app import create_app

__all__ = ["create_app"]
