"""The gateway's request guards: the body-size limit and the bearer token (shared with the sandbox)."""

from __future__ import annotations

from rewardstack.services.web import BodySizeLimit, bearer_token_check

require_token = bearer_token_check("REWARDSTACK_API_TOKEN")

__all__ = ["BodySizeLimit", "require_token"]
