"""Liveness and readiness."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="health_live")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="health_ready", responses={503: {}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and the executor accepts work."""
    try:
        await request.app.state.database.ping()
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        body = {"status": "unavailable", "database": type(error).__name__}
        return JSONResponse(body, status_code=503)
    if not request.app.state.service.executor.accepting:
        body = {"status": "shutting_down", "database": "ok"}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "database": "ok"})
