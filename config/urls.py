"""Top-level routes: the API under /api/v1/, its schema and docs, the admin, the pages."""

from pathlib import Path

from csp.decorators import csp_update
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.errors import error_body


@csrf_exempt  # it changes nothing; otherwise Django's CSRF check answers an unsafe method with an HTML 403
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


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
    path("api/v1/<path:path>", api_not_found),
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
    path("leaderboard/", include("benchmark.leaderboard_urls")),
    path("training/", include("training.page_urls")),
    path("", include("frontend.urls")),
]
