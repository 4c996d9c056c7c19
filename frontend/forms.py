"""Forms of the pages; they validate shapes, services decide."""

from __future__ import annotations

from django import forms

from contributors.models import AgeBand, Gender
from contributors.services.accounts import GUARDIAN_EMAIL_REQUIRED, GUARDIAN_REQUIRED, signup_problems
from core.inputs import validate_printable

PUBLISHED_NOTE = (
    "Published with your recordings, under a pseudonymous speaker id: age band, gender, accent and first "
    "language, each only when you give it, and withheld for any group of fewer than five speakers. Your "
    "username and email are never published."
)


class ProfileForm(forms.Form):
    age_band = forms.ChoiceField(choices=[("", "Prefer not to say"), *AgeBand.choices], required=False)
    gender = forms.ChoiceField(choices=[("", "Prefer not to say"), *Gender.choices], required=False)
    accent = forms.CharField(
        max_length=64,
        required=False,
        help_text="Your accent or dialect region, in your own words.",
        validators=[validate_printable],
    )
    first_language = forms.CharField(max_length=64, required=False, validators=[validate_printable])
    cc0_consent = forms.BooleanField(
        required=False,
        label="I dedicate my recordings to the public domain (CC0 1.0) so that anyone may use them.",
    )
    guardian_consent = forms.BooleanField(
        required=False,
        label=(
            "For a contributor under 18: I am their parent or legal guardian and agree to their recordings being "
            "published under CC0 (for 12 or under, I run this account with them)."
        ),
    )

    guardian_email = forms.EmailField(
        required=False,
        label="The parent's or guardian's e-mail",
        help_text="Needed with their agreement, so that the project can reach them about the recordings.",
    )

    def clean(self) -> dict:
        data = super().clean()
        minor = data.get("age_band") in (AgeBand.CHILD, AgeBand.TEEN)
        if minor and data.get("cc0_consent") and not data.get("guardian_consent"):
            self.add_error("guardian_consent", GUARDIAN_REQUIRED)
        if data.get("guardian_consent") and not data.get("guardian_email") and "guardian_email" not in self.errors:
            self.add_error("guardian_email", GUARDIAN_EMAIL_REQUIRED)
        return data


class SignupForm(ProfileForm):
    username = forms.RegexField(
        regex=r"^[\w.@+-]{3,150}$",
        max_length=150,
        help_text="3 or more letters, digits or . @ + - _",
        error_messages={"invalid": "Use 3 or more letters, digits or . @ + - _"},
    )
    email = forms.EmailField(
        required=False,
        max_length=254,
        help_text="Optional; for the operators to reach you about your account, never published.",
    )
    # Kept in the field after a refused attempt: retyping it for every other field's mistake drives people away.
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=True), help_text="At least 8 characters, not too common."
    )

    field_order = [
        "username", "email", "password", "age_band", "cc0_consent", "guardian_consent", "guardian_email", "gender",
        "accent", "first_language",
    ]  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Asked here, not as a detour before the first recording: recording is what signing up is for.
        self.fields["cc0_consent"].required = True
        self.fields["cc0_consent"].error_messages["required"] = (
            "Recordings are published under CC0; tick the dedication to take part."
        )

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
