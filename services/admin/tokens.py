"""Operator tokens: only their SHA-256 is stored, and a presented token's
digest is compared with every active one in constant time.

The tokens in ODP_ADMIN_TOKENS are synced in when the service starts: new
ones are added, and ones that were added from it but are gone are revoked.
"""

from __future__ import annotations

import hmac

from sqlalchemy import func, or_, select, text, update

from shared.operator import Forbidden, token_digest
from shared.tables import operator_tokens

FROM_CONFIG = "ODP_ADMIN_TOKENS"


def sync_from_config(engine, tokens: tuple[str, ...]) -> None:
    wanted = {token_digest(token) for token in tokens if token}
    with engine.begin() as conn:
        known = {row.token_sha256: row for row in conn.execute(
            select(operator_tokens).where(operator_tokens.c.label == FROM_CONFIG))}
        for digest in wanted - known.keys():
            conn.execute(operator_tokens.insert().values(label=FROM_CONFIG,
                                                         token_sha256=digest))
        for digest, row in known.items():
            revoked = digest not in wanted
            if revoked != (row.revoked_at is not None):
                conn.execute(update(operator_tokens).where(operator_tokens.c.id == row.id)
                             .values(revoked_at=func.now() if revoked else None))


def check(conn, digest: str) -> None:
    """Raise Forbidden unless `digest` is an active token's."""
    active = conn.execute(select(operator_tokens.c.id, operator_tokens.c.token_sha256)
                          .where(operator_tokens.c.revoked_at.is_(None))).all()
    matched = None
    for row in active:  # every row is compared: the time taken says nothing
        if hmac.compare_digest(row.token_sha256.encode(), str(digest).encode()):
            matched = row.id
    if matched is None:
        raise Forbidden("the operator token is not valid")
    # Stamped at most once a minute: a read-only call should not cost a write.
    conn.execute(update(operator_tokens).where(
        operator_tokens.c.id == matched,
        or_(operator_tokens.c.last_used_at.is_(None),
            operator_tokens.c.last_used_at < func.now() - text("interval '1 minute'")))
        .values(last_used_at=func.now()))
