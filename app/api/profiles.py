"""The operator's profiles, as callers may pick them."""

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from app.api.deps import require_api_key
from app.planning.models import Agent


class ProfileRead(BaseModel):
    """A profile by name, with the runner kind of each agent; never its options."""

    name: str
    description: str
    default: bool = Field(description="Used when a request names no profile.")
    default_runner: str
    runners: dict[Agent, str]


router = APIRouter(
    prefix="/profiles", tags=["profiles"], dependencies=[Depends(require_api_key)]
)


@router.get("", operation_id="profiles_list")
async def list_profiles(request: Request) -> list[ProfileRead]:
    """The profiles a request may name in config.profile."""
    default = request.app.state.settings.default_profile
    return [
        ProfileRead(**profile, default=profile["name"] == default)
        for profile in request.app.state.registry.describe()
    ]
