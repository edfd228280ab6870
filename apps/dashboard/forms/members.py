"""Forms of the members page: inviting someone, changing a member's role."""

from __future__ import annotations

from django import forms

from apps.tenants.models import Membership

ROLE_HELP = (
    "Owner: everything, billing and members. Admin: keys, tools, agents, models, data. "
    "Member: the playground and read-only lists."
)


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    role = forms.ChoiceField(
        label="Role", choices=Membership.Role.choices, initial=Membership.Role.MEMBER, help_text=ROLE_HELP
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices)
