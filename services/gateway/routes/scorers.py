"""`GET /v1/scorers`: what this gateway can score, with parameters, defaults and versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic.fields import FieldInfo

from rewardstack.services.contract import ParamInfo, ScorerInfo, ScorerList
from rewardstack.services.gateway.deps import RegistryDep
from rewardstack.services.gateway.limits import require_token

router = APIRouter(prefix="/v1", tags=["scorers"], dependencies=[Depends(require_token)])


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _param(name: str, field: FieldInfo) -> ParamInfo:
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    return ParamInfo(name=name, type=_type_name(field.annotation), default=default, description=field.description or "")


@router.get("/scorers", response_model=ScorerList)
async def list_scorers(registry: RegistryDep) -> ScorerList:
    return ScorerList(
        scorers=[
            ScorerInfo(
                name=scorer.name,
                version=scorer.versioned_name,
                description=scorer.description,
                params=[_param(name, field) for name, field in scorer.Params.model_fields.items()],
            )
            for scorer in registry
        ]
    )
