"""Access: users and roles, passwords, sessions and tokens, and who may see which cases.

Roles and permissions are data (``roles.yaml``). Scoping to a force happens in one place,
``ore.auth.scope``, which every case query passes through; on PostgreSQL row-level
security repeats it inside the database.
"""

from ore.auth.policy import Policy, load_policy
from ore.auth.principal import SYSTEM, AccessDenied, Principal, principal_for

__all__ = ["SYSTEM", "AccessDenied", "Policy", "Principal", "load_policy", "principal_for"]
