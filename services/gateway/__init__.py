"""The gateway: the reward REST API in front of the scorers."""

from rewardstack.services.gateway.app import create_app

__all__ = ["create_app"]
