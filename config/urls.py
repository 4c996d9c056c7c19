"""Top-level routes: the API under /api/v1/, its schema and docs, the admin, the pages."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.errors import error_body


def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


urlpatterns = [
    path("api/v1/", include("contributors.urls")),
    path("api/v1/", include("benchmark.urls")),  # releases
    path("api/v1/training/", include("training.urls")),
    path("api/v1/<path:path>", api_not_found),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
    path("releases/", include("benchmark.page_urls")),
    path("leaderboard/", include("benchmark.leaderboard_urls")),
    path("training/", include("training.page_urls")),
    path("", include("frontend.urls")),
]
