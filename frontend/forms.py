"""Forms of the pages; they validate shapes, services decide."""

from __future__ import annotations

from django import forms

from contributors.models import AgeBand, Gender
from contributors.services.accounts import signup_problems

PUBLISHED_NOTE = (
    "Published with your recordings, under a pseudonymous speaker id: age band, gender, accent and first "
    "language, each only when you give it, and withheld for any group of fewer than five speakers. Your "
    "username and email are never published."
)


class ProfileForm(forms.Form):
    age_band = forms.ChoiceField(choices=[("", "Prefer not to say"), *AgeBand.choices], required=False)
    gender = forms.ChoiceField(choices=[("", "Prefer not to say"), *Gender.choices], required=False)
    accent = forms.CharField(
        max_length=64, required=False, help_text="Your accent or dialect region, in your own words."
    )
    first_language = forms.CharField(max_length=64, required=False)
    cc0_consent = forms.BooleanField(
        required=False,
        label="I dedicate my recordings to the public domain (CC0 1.0) so that anyone may use them.",
    )


class SignupForm(ProfileForm):
    username = forms.RegexField(
        regex=r"^[\w.@+-]{3,150}$",
        max_length=150,
        help_text="3 or more letters, digits or . @ + - _",
        error_messages={"invalid": "Use 3 or more letters, digits or . @ + - _"},
    )
    email = forms.EmailField(required=False, help_text="Optional; only for resetting your password.")
    # Kept in the field after a refused attempt: retyping it for every other field's mistake drives people away.
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=True), help_text="At least 8 characters, not too common."
    )

    field_order = ["username", "email", "password", "cc0_consent", "age_band", "gender", "accent", "first_language"]

    def clean(self) -> dict:
        """Every problem at once: the service's own checks (a taken name, a weak password) beside the fields'."""
        data = super().clean()
        if "username" in data and "password" in data:
            problems = signup_problems(
                username=data["username"], password=data["password"], email=data.get("email", "")
            )
            for field, message in problems.items():
                self.add_error(field, message)
        return data
