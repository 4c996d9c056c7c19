"""Routes of the releases and leaderboard API, mounted under /api/v1/."""

from django.urls import path

from benchmark import apis

urlpatterns = [
    path("releases/", apis.ReleaseListApi.as_view(), name="releases"),
    path("releases/<str:version>/", apis.ReleaseDetailApi.as_view(), name="release-detail"),
    path("releases/<str:version>/files", apis.ReleaseFilesApi.as_view(), name="release-files"),
    path("releases/<str:version>/files/<path:path>", apis.ReleaseFileDownloadApi.as_view(), name="release-file"),
    path("submissions/", apis.SubmissionCreateApi.as_view(), name="submissions"),
    path("submissions/mine", apis.SubmissionMineApi.as_view(), name="submissions-mine"),
    path("submissions/<int:submission_id>", apis.SubmissionDetailApi.as_view(), name="submission-detail"),
    path("submissions/<int:submission_id>/cancel", apis.SubmissionCancelApi.as_view(), name="submission-cancel"),
    path("leaderboard/", apis.LeaderboardApi.as_view(), name="leaderboard"),
    path("leaderboard.csv", apis.LeaderboardCsvApi.as_view(), name="leaderboard-csv"),
]
