"""Routes of the releases and leaderboard API, mounted under /api/v1/."""

from django.urls import path

from benchmark.leaderboard import apis as leaderboard_apis
from benchmark.leaderboard import submission_apis
from benchmark.releases import apis as release_apis

urlpatterns = [
    path("releases/", release_apis.ReleaseListApi.as_view(), name="releases"),
    path("releases/<str:version>/", release_apis.ReleaseDetailApi.as_view(), name="release-detail"),
    path("releases/<str:version>/files", release_apis.ReleaseFilesApi.as_view(), name="release-files"),
    path(
        "releases/<str:version>/files/<path:path>", release_apis.ReleaseFileDownloadApi.as_view(), name="release-file"
    ),
    path("submissions/", submission_apis.SubmissionCreateApi.as_view(), name="submissions"),
    path("submissions/mine", submission_apis.SubmissionMineApi.as_view(), name="submissions-mine"),
    path("submissions/<int:submission_id>", submission_apis.SubmissionDetailApi.as_view(), name="submission-detail"),
    path(
        "submissions/<int:submission_id>/cancel",
        submission_apis.SubmissionCancelApi.as_view(),
        name="submission-cancel",
    ),
    path("leaderboard/", leaderboard_apis.LeaderboardApi.as_view(), name="leaderboard"),
    path("leaderboard.csv", leaderboard_apis.LeaderboardCsvApi.as_view(), name="leaderboard-csv"),
]
