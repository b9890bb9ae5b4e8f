"""The website's routes (the API's are services/gateway/routes.py)."""

from __future__ import annotations

from services.gateway.routes import AGENCY_ID, Route
from services.gateway.web import operator_pages as op
from services.gateway.web.pages import (
    About,
    AgencyPage,
    AgencySearch,
    FindAStop,
    Home,
    StatePage,
)


def web_routes(deps, config) -> list[Route]:
    engine = deps.engine
    return [
        Route("/", Home(engine), "The states and their facts"),
        Route("/about/", About(), "Where the data comes from and what it counts"),
        Route("/{state}/", StatePage(engine), "A state: facts, top agencies, statewide charts"),
        Route("/{state}/agencies/", AgencySearch(engine), "Agencies, or those matching q"),
        Route(f"/{{state}}/agencies/{AGENCY_ID}/", AgencyPage(engine),
              "An agency: every chart its state has"),
        Route("/{state}/find-a-stop/", FindAStop(engine), "Find a stop (nc)"),
        *operator_page_routes(deps.admin, op.Signer.from_config(config)),
    ]


def operator_page_routes(admin, signer) -> list[Route]:
    """The operator pages (services/gateway/web/operator_pages.py)."""
    imports = "/admin/imports/{import_id:int(min=1)}/"
    return [
        Route("/admin/", op.SignIn(admin, signer), "Sign in with the operator token"),
        Route("/admin/sign-out/", op.SignOut(admin, signer), "Sign out (POST)"),
        Route("/admin/datasets/", op.Datasets(admin, signer),
              "The datasets, and the form that adds one"),
        Route("/admin/datasets/{dataset_id:int(min=1)}/import/", op.StartImport(admin, signer),
              "Start an import of the dataset (POST)"),
        Route("/admin/imports/", op.Imports(admin, signer), "The imports, newest first"),
        Route(imports, op.Import(admin, signer), "One import, followed live"),
        Route(f"{imports}progress.json", op.ImportProgress(admin, signer),
              "One import's record, as JSON"),
        Route("/admin/agencies/", op.Agencies(admin, signer),
              "Upload an agency mapping or Maryland's stop reasons"),
        Route("/admin/census/", op.Census(admin, signer), "Ask for a census refresh"),
        Route("/admin/census/{request_id}/", op.CensusRefresh(admin, signer),
              "One census refresh"),
    ]
