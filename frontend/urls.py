"""Pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(template_name="frontend/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="/"), name="logout"),
    path("profile/", views.profile, name="profile"),
    path("record/", views.record, name="record"),
    path("validate/", views.validate, name="validate"),
    path("sentences/", views.sentences, name="sentences"),
    path("sentences/<int:proposal_id>/review/", views.sentence_review_view, name="sentence-review"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/clips/<int:clip_id>/withdraw/", views.clip_withdraw_view, name="clip-withdraw"),
    path("account/delete/", views.account_delete, name="account-delete"),
    path("healthz", views.healthz, name="healthz"),
]
