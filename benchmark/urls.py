"""Routes of the releases API, mounted under /api/v1/."""

from django.urls import path

from benchmark import apis

urlpatterns = [
    path("releases/", apis.ReleaseListApi.as_view(), name="releases"),
    path("releases/<str:version>/", apis.ReleaseDetailApi.as_view(), name="release-detail"),
    path("releases/<str:version>/files", apis.ReleaseFilesApi.as_view(), name="release-files"),
    path("releases/<str:version>/files/<path:path>", apis.ReleaseFileDownloadApi.as_view(), name="release-file"),
]
