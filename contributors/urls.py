"""Routes of the contribution API, mounted under /api/v1/."""

from django.urls import path

from contributors import apis, sentence_apis

urlpatterns = [
    # The validation path first: the resolver tries the patterns in order, and these two are most of the API's
    # requests (no other pattern matches their paths, so the order changes nothing else).
    path("clips/<str:clip_id>/votes", apis.VoteCreateApi.as_view(), name="clip-votes"),
    path("validation/next", apis.ValidationNextApi.as_view(), name="validation-next"),
    path("auth/signup", apis.SignupApi.as_view(), name="auth-signup"),
    path("auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/token", apis.TokenApi.as_view(), name="auth-token"),
    path("me", apis.MeApi.as_view(), name="me"),
    path("me/progress", apis.MeProgressApi.as_view(), name="me-progress"),
    path("me/export", apis.MeExportApi.as_view(), name="me-export"),
    path("me/delete", apis.MeDeleteApi.as_view(), name="me-delete"),
    path("prompts/next", apis.PromptsNextApi.as_view(), name="prompts-next"),
    path("prompts/<str:prompt_id>/skip", sentence_apis.PromptSkipApi.as_view(), name="prompt-skip"),
    path("prompts/<str:prompt_id>/report", sentence_apis.PromptReportApi.as_view(), name="prompt-report"),
    path("sentences/", sentence_apis.SentencesApi.as_view(), name="sentences"),
    path("sentences/review", sentence_apis.SentenceReviewQueueApi.as_view(), name="sentences-review"),
    path("sentences/<str:proposal_id>/review", sentence_apis.SentenceReviewApi.as_view(), name="sentence-review"),
    path("clips/", apis.ClipCreateApi.as_view(), name="clips-create"),
    path("clips/mine", apis.ClipsMineApi.as_view(), name="clips-mine"),
    path("clips/<int:clip_id>", apis.ClipDetailApi.as_view(), name="clip-detail"),
    path("clips/<int:clip_id>/audio", apis.ClipAudioApi.as_view(), name="clip-audio"),
    path("clips/<int:clip_id>/withdraw", apis.ClipWithdrawApi.as_view(), name="clip-withdraw"),
    path("clips/<str:clip_id>/skip", apis.ClipSkipApi.as_view(), name="clip-skip"),
    path("clips/<str:clip_id>/report", apis.ClipReportApi.as_view(), name="clip-report"),
]
