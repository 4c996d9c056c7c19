"""Top-level routes: the API under /api/v1/, its schema and docs, the admin, the pages."""

from pathlib import Path

from csp.decorators import csp_update
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import error_views

FAVICON = Path(__file__).resolve().parent.parent / "frontend" / "static" / "frontend" / "favicon.ico"


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links; answer it (the pages also link the static copy)."""
    response = HttpResponse(FAVICON.read_bytes(), content_type="image/vnd.microsoft.icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("api/v1/", include("contributors.urls")),
    path("api/v1/", include("benchmark.urls")),  # releases
    path("api/v1/training/", include("training.urls")),
    # Exempt: it changes nothing, and Django's CSRF check would answer an unsafe method with its HTML 403.
    path("api/v1/<path:path>", csrf_exempt(error_views.api_not_found)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file (?script), so the docs run under the site's CSP with
    # no inline script; our template links a stylesheet in place of the stock inline <style>. Swagger UI draws
    # its icons as data: SVG images, the one thing this page adds to the policy. There is no Redoc page: it
    # needs inline styles (styled-components), a blob: worker and Google's fonts, and documents the same schema.
    path(
        "api/docs/",
        csp_update({"img-src": ["data:"]})(
            SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="frontend/swagger_ui.html")
        ),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
    path("releases/", include("benchmark.page_urls")),
    path("leaderboard/", include("benchmark.leaderboard.urls")),
    path("training/", include("training.page_urls")),
    path("", include("frontend.urls")),
]

# Under /api/ in the API's shape {code, message}, Django's pages elsewhere.
handler400 = error_views.bad_request
handler403 = error_views.permission_denied
handler404 = error_views.page_not_found
handler500 = error_views.server_error
