"""Forms of signing in, signing up and creating a team."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

User = get_user_model()


def email_taken(email: str) -> bool:
    return bool(User.objects.filter(email__iexact=email.strip()).exists())


class SignInForm(AuthenticationForm):
    """Django's sign-in, with an e-mail address accepted in place of the username (addresses are
    unique among accounts the console makes; an address two old accounts share signs in neither)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Username or e-mail"

    def clean(self) -> dict[str, Any]:
        given = (self.cleaned_data.get("username") or "").strip()
        if "@" in given and not User.objects.filter(username=given).exists():
            matches = list(User.objects.filter(email__iexact=given).values_list("username", flat=True)[:2])
            if len(matches) == 1:
                self.cleaned_data["username"] = matches[0]
        return super().clean()


class SignUpForm(UserCreationForm):  # type: ignore[type-arg]
    team_name = forms.CharField(
        label="Team name", max_length=200, help_text="You can invite people and make more teams later."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["email"].help_text = "For password resets and invitations."

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip().lower()
        if email_taken(email):
            raise forms.ValidationError("An account with this e-mail address exists: sign in instead.")
        return email

    def clean_team_name(self) -> str:
        name = str(self.cleaned_data["team_name"]).strip()
        if not name:
            raise forms.ValidationError("A team needs a name.")
        return name


class InvitedSignUpForm(UserCreationForm):  # type: ignore[type-arg]
    """A new account for an invitation: its e-mail address is the invited one."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.email = email  # the password validators compare with it too
        self.email = email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        if email_taken(self.email):
            raise forms.ValidationError(f"An account with {self.email} exists: sign in to accept.")
        return cleaned


class TeamCreateForm(forms.Form):
    name = forms.CharField(label="Team name", max_length=200)

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError("A team needs a name.")
        return name
