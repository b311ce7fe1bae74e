"""The API's OpenAPI schema and its Swagger UI and ReDoc pages, served here rather than by
FastAPI itself so that they need a key whenever the API does (FastAPI's own are always open)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from evergraph.server.deps import admitted

OPENAPI_PATH = "/openapi.json"
router = APIRouter(include_in_schema=False, dependencies=[Depends(admitted)])


@router.get(OPENAPI_PATH)
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title=f"{request.app.title} - Swagger UI")


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI_PATH, title=f"{request.app.title} - ReDoc")
