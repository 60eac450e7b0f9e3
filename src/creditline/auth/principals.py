"""Principals and roles (DESIGN §1): who a key acts for and what it may do.

- platform: vendor staff and the billing feed; manages partners, grants, applications.
- partner ``viewer`` reads; ``operator`` also allocates, withdraws and handles alarms;
  ``admin`` also manages keys and settings (thresholds, applications, sub-resellers).
  A distributor's keys may also allocate pool to its second-level resellers.
- customer: reads its own credit, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditline.errors import CreditlineError, NotPermitted

#: Each role includes the ones before it.
ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}


class Unauthenticated(CreditlineError):
    """No usable credentials were presented."""

    code = "unauthenticated"
    kind = "unauthenticated"


@dataclass(frozen=True)
class Principal:
    """The caller of one request, as its API key says."""

    key_id: int
    secret_id: str
    kind: str  # platform, partner, customer
    name: str
    partner_id: int | None = None
    partner_kind: str | None = None
    role: str | None = None
    customer_uin: int | None = None

    @property
    def operator(self) -> str:
        """What allocation records show as the operator: the key's name."""
        return self.name

    def partner(self, role: str = "viewer") -> int:
        """The partner this key acts for, if it holds at least ``role``; else refuse."""
        if self.kind != "partner" or self.partner_id is None or self.role is None:
            raise NotPermitted("this endpoint needs a partner key")
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            raise NotPermitted(f"this needs the {role} role; the key is {self.role}")
        return self.partner_id

    def distributor(self, role: str = "operator") -> int:
        """The distributor this key acts for (sub-reseller management)."""
        partner_id = self.partner(role)
        if self.partner_kind != "distributor":
            raise NotPermitted("only a distributor has second-level resellers")
        return partner_id

    def platform(self) -> None:
        """Refuse unless this is a platform key."""
        if self.kind != "platform":
            raise NotPermitted("this endpoint needs a platform key")

    def customer(self) -> tuple[int, int]:
        """(partner_id, customer_uin) of a customer key; refuse any other key."""
        if self.kind != "customer" or self.customer_uin is None or self.partner_id is None:
            raise NotPermitted("this endpoint needs a customer key")
        return self.partner_id, self.customer_uin
